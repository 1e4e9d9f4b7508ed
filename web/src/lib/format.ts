// Display helpers (pure; tests/unit/format.test.ts).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n: number | null | undefined): string {
	if (n === null || n === undefined || !Number.isFinite(n)) return '—';
	let i = 0;
	let v = Math.abs(n);
	while (v >= 1024 && i < UNITS.length - 1) {
		v /= 1024;
		i++;
	}
	const s = i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
	return `${n < 0 ? '-' : ''}${s} ${UNITS[i]}`;
}

export function rate(bytesPerSec: number): string {
	const bits = bytesPerSec * 8;
	if (bits < 1000) return `${bits.toFixed(0)} bit/s`;
	if (bits < 1e6) return `${(bits / 1e3).toFixed(1)} kbit/s`;
	if (bits < 1e9) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
	return `${(bits / 1e9).toFixed(2)} Gbit/s`;
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago"; "never" for null; "in ..." for the future. */
export function ago(unixSeconds: number | null | undefined, nowMs = Date.now()): string {
	if (unixSeconds === null || unixSeconds === undefined || unixSeconds <= 0) return 'never';
	const d = Math.round(nowMs / 1000 - unixSeconds);
	const a = Math.abs(d);
	const s =
		a < 60 ? `${a} s` : a < 3600 ? `${Math.floor(a / 60)} min` : a < 86400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} d`;
	return d >= 0 ? `${s} ago` : `in ${s}`;
}

export function duration(seconds: number): string {
	if (seconds < 60) return `${seconds} s`;
	if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
	if (seconds < 86400) {
		const h = Math.floor(seconds / 3600);
		const m = Math.round((seconds % 3600) / 60);
		return m ? `${h} h ${m} min` : `${h} h`;
	}
	const d = Math.floor(seconds / 86400);
	const h = Math.round((seconds % 86400) / 3600);
	return h ? `${d} d ${h} h` : `${d} d`;
}

/** ISO-like local time for tables: 2026-12-07 14:03:09. */
export function when(ms: number): string {
	const d = new Date(ms);
	const p = (n: number) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Splits a list typed by a person ("10.0.0.0/24, 10.1.0.0/24\n1.1.1.1") into items. */
export function splitList(s: string): string[] {
	return s
		.split(/[\s,;]+/)
		.map((x) => x.trim())
		.filter((x) => x.length > 0);
}
