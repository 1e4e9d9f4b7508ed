// Bandwidth over time from cumulative byte counters (the dashboard's graph).
export interface Sample {
	ts: number; // unix seconds
	rx: number; // cumulative bytes received by the clients' hubs
	tx: number;
	online: number;
}

export interface Point {
	ts: number;
	rx: number; // bytes per second
	tx: number;
	online: number;
}

/** Rates between consecutive samples; a counter that went down (a restart, a deleted client)
 * counts as zero for that interval rather than a negative spike. */
export function rates(samples: Sample[]): Point[] {
	const out: Point[] = [];
	for (let i = 1; i < samples.length; i++) {
		const a = samples[i - 1];
		const b = samples[i];
		const dt = b.ts - a.ts;
		if (dt <= 0) continue;
		out.push({
			ts: b.ts,
			rx: Math.max(0, b.rx - a.rx) / dt,
			tx: Math.max(0, b.tx - a.tx) / dt,
			online: b.online,
		});
	}
	return out;
}

/** Keeps samples of the last `windowSec` seconds, in time order, without duplicates. */
export function append(samples: Sample[], s: Sample, windowSec = 3600): Sample[] {
	const last = samples[samples.length - 1];
	const out = last && s.ts <= last.ts ? samples.filter((x) => x.ts < s.ts) : samples.slice();
	out.push(s);
	const from = s.ts - windowSec;
	let i = 0;
	while (i < out.length && out[i].ts < from) i++;
	return i ? out.slice(i) : out;
}

/** An SVG polyline path of values scaled into w x h (y grows downwards). */
export function path(points: { ts: number; v: number }[], w: number, h: number, t0: number, t1: number, max: number): string {
	if (!points.length || t1 <= t0) return '';
	const m = max > 0 ? max : 1;
	return points
		.map((p, i) => {
			const x = ((p.ts - t0) / (t1 - t0)) * w;
			const y = h - (p.v / m) * h;
			return `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
		})
		.join(' ');
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
export function niceMax(v: number): number {
	if (v <= 0) return 1;
	const p = Math.pow(10, Math.floor(Math.log10(v)));
	for (const k of [1, 2, 5, 10]) if (v <= k * p) return k * p;
	return 10 * p;
}
