package timeline

// point is a corner of the feasible region in (a, u) space, both in ns.
type point struct{ a, u float64 }

// clip intersects the convex polygon with the half-plane ca*a + cu*u <= d
// (Sutherland-Hodgman for one edge); an empty result means no point is left.
func clip(poly []point, ca, cu, d float64) []point {
	const eps = 1e-9
	f := func(p point) float64 { return ca*p.a + cu*p.u - d }
	var out []point
	for i, p := range poly {
		q := poly[(i+1)%len(poly)]
		fp, fq := f(p), f(q)
		if fp <= eps {
			out = append(out, p)
		}
		if (fp < -eps && fq > eps) || (fp > eps && fq < -eps) {
			t := fp / (fp - fq)
			out = append(out, point{p.a + t*(q.a-p.a), p.u + t*(q.u-p.u)})
		}
	}
	return out
}
