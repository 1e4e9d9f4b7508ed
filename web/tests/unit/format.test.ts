import { describe, it, expect } from 'vitest';
import { bytes, rate, ago, duration, splitList } from '../../src/lib/format';

describe('format', () => {
	it('bytes in binary units', () => {
		expect(bytes(0)).toBe('0 B');
		expect(bytes(1023)).toBe('1023 B');
		expect(bytes(1024)).toBe('1.00 KiB');
		expect(bytes(1536)).toBe('1.50 KiB');
		expect(bytes(10 * 1024 * 1024)).toBe('10.0 MiB');
		expect(bytes(500 * 1024 ** 3)).toBe('500 GiB');
		expect(bytes(null)).toBe('—');
		expect(bytes(Number.NaN)).toBe('—');
	});
	it('rates in bits per second', () => {
		expect(rate(0)).toBe('0 bit/s');
		expect(rate(125)).toBe('1.0 kbit/s');
		expect(rate(125_000)).toBe('1.0 Mbit/s');
		expect(rate(125_000_000)).toBe('1.00 Gbit/s');
	});
	it('relative times, past and future', () => {
		const now = 1_000_000_000_000;
		expect(ago(null, now)).toBe('never');
		expect(ago(0, now)).toBe('never');
		expect(ago(now / 1000 - 5, now)).toBe('5 s ago');
		expect(ago(now / 1000 - 180, now)).toBe('3 min ago');
		expect(ago(now / 1000 - 7200, now)).toBe('2 h ago');
		expect(ago(now / 1000 - 4 * 86400, now)).toBe('4 d ago');
		expect(ago(now / 1000 + 3600, now)).toBe('in 1 h');
	});
	it('durations', () => {
		expect(duration(30)).toBe('30 s');
		expect(duration(3600)).toBe('1 h');
		expect(duration(5400)).toBe('1 h 30 min');
		expect(duration(86400)).toBe('1 d');
		expect(duration(7 * 86400)).toBe('7 d');
	});
	it('lists typed by a person', () => {
		expect(splitList(' 10.0.0.0/24, 10.1.0.0/24\n1.1.1.1;; ')).toEqual(['10.0.0.0/24', '10.1.0.0/24', '1.1.1.1']);
		expect(splitList('')).toEqual([]);
	});
});
