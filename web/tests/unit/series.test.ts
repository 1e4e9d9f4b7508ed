import { describe, it, expect } from 'vitest';
import { rates, append, path, niceMax, type Sample } from '../../src/lib/series';

const s = (ts: number, rx: number, tx: number, online = 1): Sample => ({ ts, rx, tx, online });

describe('bandwidth series', () => {
	it('turns cumulative counters into rates', () => {
		expect(rates([s(0, 0, 0), s(10, 1000, 500), s(20, 3000, 500)])).toEqual([
			{ ts: 10, rx: 100, tx: 50, online: 1 },
			{ ts: 20, rx: 200, tx: 0, online: 1 },
		]);
	});
	it('counts a counter that went down as zero, not a negative spike', () => {
		expect(rates([s(0, 5000, 5000), s(10, 100, 200)])[0]).toMatchObject({ rx: 0, tx: 0 });
	});
	it('skips samples without time between them', () => {
		expect(rates([s(10, 0, 0), s(10, 100, 100)])).toEqual([]);
	});
	it('keeps an hour, in order, without duplicates', () => {
		let list: Sample[] = [];
		for (let t = 0; t <= 7200; t += 10) list = append(list, s(t, t, t));
		expect(list[0].ts).toBe(3600);
		expect(list[list.length - 1].ts).toBe(7200);
		list = append(list, s(7200, 1, 1)); // the same time again replaces it
		expect(list.filter((x) => x.ts === 7200)).toEqual([s(7200, 1, 1)]);
		list = append(list, s(7000, 2, 2)); // an older one drops what came after it
		expect(list[list.length - 1]).toEqual(s(7000, 2, 2));
	});
	it('draws within the box', () => {
		const d = path([{ ts: 0, v: 0 }, { ts: 50, v: 5 }, { ts: 100, v: 10 }], 200, 100, 0, 100, 10);
		expect(d).toBe('M0.0,100.0 L100.0,50.0 L200.0,0.0');
		expect(path([], 200, 100, 0, 100, 10)).toBe('');
	});
	it('rounds axis maxima to 1, 2 or 5 times a power of ten', () => {
		expect(niceMax(0)).toBe(1);
		expect(niceMax(3)).toBe(5);
		expect(niceMax(120)).toBe(200);
		expect(niceMax(1000)).toBe(1000);
		expect(niceMax(0.03)).toBeCloseTo(0.05);
	});
});
