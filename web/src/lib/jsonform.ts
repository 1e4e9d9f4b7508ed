// A JSON document (a policy) edited as a form, with the server's problems placed on the fields
// they name (pure; tests/unit/jsonform.test.ts). The server names a field by its path:
// "tunnels[1].esp_proposals[0]", "topology.left", "name". A problem whose field is not in the
// document (a required field left out) goes to the nearest part that is: the tunnel's box.

export type Seg = string | number;

/** "tunnels[1].esp_proposals[0]" -> ['tunnels', 1, 'esp_proposals', 0]; '' -> []. */
export function parsePath(p: string): Seg[] {
	const out: Seg[] = [];
	const re = /([^.[\]]+)|\[(\d+)\]/g;
	let m: RegExpExecArray | null;
	while ((m = re.exec(p))) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
	return out;
}

/** The inverse of parsePath: the key of a form field. */
export function pathKey(segs: readonly Seg[]): string {
	let s = '';
	for (const x of segs) s += typeof x === 'number' ? `[${x}]` : s ? `.${x}` : x;
	return s;
}

function has(node: unknown, k: Seg): boolean {
	if (Array.isArray(node)) return typeof k === 'number' && k < node.length;
	return !!node && typeof node === 'object' && typeof k === 'string' && Object.prototype.hasOwnProperty.call(node, k);
}

/** Where each problem shows: the key of the deepest existing node on its path, with the
 * message (prefixed with the rest of the path when it had to go up, or when a list of plain
 * values shows as one field). Problems without a field are under ''. */
export function placeProblems(doc: unknown, problems: { field: string; detail: string }[]): Record<string, string[]> {
	const out: Record<string, string[]> = {};
	for (const p of problems) {
		const segs = parsePath(p.field || '');
		let node: unknown = doc;
		let i = 0;
		for (; i < segs.length && has(node, segs[i]); i++) {
			// A list of plain values is one input: its items' problems go on it.
			if (Array.isArray(node) && !isObj(node[segs[i] as number])) break;
			node = (node as Record<string, unknown>)[segs[i] as string];
		}
		const at = pathKey(segs.slice(0, i));
		const rest = segs.slice(i);
		const label = rest.length ? `${pathKey(rest)}: ` : '';
		(out[at] ??= []).push(label + p.detail);
	}
	return out;
}

export const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** A list of plain values as the text of one input ("a, b"), and back. */
export const listText = (a: unknown[]): string => a.map((v) => String(v)).join(', ');
export function parseList(text: string, like: unknown[]): unknown[] {
	const parts = text
		.split(',')
		.map((s) => s.trim())
		.filter((s) => s.length);
	const numeric = like.length > 0 && like.every((v) => typeof v === 'number');
	return parts.map((s) => (numeric && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s));
}

/** A scalar input's text back into the value's type (a number stays a number while the text is
 * one, so the server reports a wrong type rather than the form hiding it). */
export function parseScalar(text: string, like: unknown): unknown {
	if (typeof like === 'number' && /^-?\d+(\.\d+)?$/.test(text.trim())) return Number(text.trim());
	if (like === null && text === '') return null;
	return text;
}
