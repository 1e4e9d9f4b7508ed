import { describe, it, expect } from 'vitest';
import { parsePath, pathKey, placeProblems, parseList, parseScalar, listText } from '../../src/lib/jsonform';
import { addable, TEMPLATES } from '../../src/lib/policy';

describe('policy form: paths and problems', () => {
	it('parses the server\'s field paths and writes them back', () => {
		expect(parsePath('tunnels[1].esp_proposals[0]')).toEqual(['tunnels', 1, 'esp_proposals', 0]);
		expect(parsePath('name')).toEqual(['name']);
		expect(parsePath('')).toEqual([]);
		for (const p of ['tunnels[1].esp_proposals[0]', 'topology.left', 'name', 'tunnels[0]']) expect(pathKey(parsePath(p))).toBe(p);
	});
	const doc = {
		name: 'p',
		topology: { type: 'site-to-site', left: ['a'] },
		tunnels: [
			{ name: 't0', esp_proposals: ['ok', 'bogus'] },
			{ name: 't1', auth: 'pubkey' },
		],
	};
	it('puts each problem on the field it names, a list item on its list', () => {
		const p = placeProblems(doc, [
			{ field: 'name', detail: 'taken' },
			{ field: 'tunnels[0].esp_proposals[1]', detail: 'unknown cipher' },
			{ field: 'topology.left', detail: 'no such group' },
		]);
		expect(p).toEqual({
			name: ['taken'],
			'tunnels[0].esp_proposals': ['[1]: unknown cipher'],
			'topology.left': ['no such group'],
		});
	});
	it('puts a problem about a missing field on the nearest part that exists', () => {
		const p = placeProblems(doc, [
			{ field: 'tunnels[1].local_cert', detail: 'required with auth = pubkey' },
			{ field: 'tunnels[5].name', detail: 'x' },
			{ field: 'applies_to', detail: 'give topology or applies_to' },
			{ field: '', detail: 'whole' },
		]);
		expect(p['tunnels[1]']).toEqual(['local_cert: required with auth = pubkey']);
		expect(p['tunnels']).toEqual(['[5].name: x']);
		expect(p['']).toEqual(['applies_to: give topology or applies_to', 'whole']);
	});
	it('keeps several problems of one field', () => {
		const p = placeProblems(doc, [
			{ field: 'name', detail: 'a' },
			{ field: 'name', detail: 'b' },
		]);
		expect(p.name).toEqual(['a', 'b']);
	});
	it('reads inputs back in the type the value had', () => {
		expect(parseList('a, b ,, c', ['x'])).toEqual(['a', 'b', 'c']);
		expect(parseList('1, 2, x', [5])).toEqual([1, 2, 'x']);
		expect(listText(['a', 'b'])).toBe('a, b');
		expect(parseScalar('42', 7)).toBe(42);
		expect(parseScalar('4x', 7)).toBe('4x'); // the server says it is not a number
		expect(parseScalar('', null)).toBe(null);
		expect(parseScalar('text', 'y')).toBe('text');
	});
	it('offers the fields a policy, its topology and a tunnel may gain, not those it has', () => {
		const t = JSON.parse(JSON.stringify(TEMPLATES['site-to-site']));
		const top = addable([], t).map(([k]) => k);
		expect(top).toContain('priority');
		expect(top).not.toContain('topology');
		expect(top).not.toContain('tunnels');
		const tun = addable(['tunnels', 0], t.tunnels[0]);
		expect(tun.map(([k]) => k)).toContain('rekey_time');
		expect(tun.map(([k]) => k)).not.toContain('esp_proposals');
		expect(Object.fromEntries(tun).local_ts).toEqual([]);
		expect(addable(['topology'], t.topology).map(([k]) => k)).toEqual(['hubs', 'spokes', 'members']);
		expect(addable(['tunnels', 0, 'x'], {})).toEqual([]);
	});
});
