import { describe, it, expect } from 'vitest';
import { buildGraph, cidrWithin, layout } from '../../src/lib/topology';
import { fieldErrors } from '../../src/lib/forms';
import { ApiError } from '../../src/lib/api';

describe('topology graph', () => {
	const network = { id: 'n1', subnet4: '10.96.0.0/24' };
	const clients = [
		{ id: 'h', name: 'hub', is_relay: true, enabled: true, online: true },
		{ id: 'a', name: 'laptop', is_relay: false, enabled: true, online: true },
		{ id: 'b', name: 'printer', is_relay: false, enabled: true, online: false },
		{ id: 'c', name: 'old', is_relay: false, enabled: false, online: false },
	];
	const peers = [
		{ id: 'ph', name: 'hub-agent', client_id: 'h', online: true },
		{ id: 'pg', name: 'gateway-x', client_id: null, online: true },
	];
	const gateways = [
		{ id: 'g1', name: 'edge', online: false, state: 'pending', agent_id: null, expose: { network_id: 'n1' } },
		{ id: 'g2', name: 'dc', online: true, state: 'ok', agent_id: 'pg', expose: null },
		{ id: 'g3', name: 'elsewhere', online: true, state: 'ok', agent_id: null, expose: { network_id: 'n2' } },
	];
	const sites = [
		{ id: 's1', name: 'branch', networks: ['10.96.0.128/25'] },
		{ id: 's2', name: 'dc-lan', networks: ['192.168.5.0/24'] },
		{ id: 's3', name: 'unrelated', networks: ['172.16.0.0/12'] },
	];
	const resources = [{ gateway_id: 'g1', site_id: 's2' }];
	const tunnels = [
		{ name: 'wg0', state: 'up', ends: [{ peer_id: 'ph', peer_name: 'hub-agent', state: 'up' }] },
		{ name: 'to-paris', state: 'partial', ends: [{ peer_id: 'ph', peer_name: 'hub-agent', state: 'up' }, { peer_id: 'px', peer_name: 'paris', state: 'down' }] },
		{ name: 'not-ours', state: 'up', ends: [{ peer_id: 'py', peer_name: 'y', state: 'up' }] },
	];
	const g = buildGraph({ network, clients, peers, gateways, sites, resources, tunnels });
	const node = (id: string) => g.nodes.find((n) => n.id === id);
	const edge = (a: string, b: string) => g.edges.find((e) => (e.a === a && e.b === b) || (e.a === b && e.b === a));
	it('has the hub, its clients by state, and links them live only when both are online', () => {
		expect(node('c:h')).toMatchObject({ kind: 'hub', state: 'online' });
		expect(node('c:c')?.state).toBe('disabled');
		expect(edge('c:h', 'c:a')?.state).toBe('live');
		expect(edge('c:h', 'c:b')?.state).toBe('idle');
	});
	it("takes the gateways of the network (its expose network, or its agent's), not others", () => {
		expect(node('g:g1')).toMatchObject({ kind: 'gateway', state: 'pending' });
		expect(node('g:g3')).toBeUndefined();
		// g2's agent runs no client of this network: not here
		expect(node('g:g2')).toBeUndefined();
	});
	it('takes the sites inside its subnets or served by its gateways', () => {
		expect(node('s:s1')?.kind).toBe('site');
		expect(edge('c:h', 's:s1')?.state).toBe('live');
		expect(node('s:s2')?.kind).toBe('site');
		expect(edge('g:g1', 's:s2')?.state).toBe('idle');
		expect(node('s:s3')).toBeUndefined();
	});
	it("links the agents' tunnels to their ends; an end elsewhere is a peer node", () => {
		expect(node('t:wg0')).toMatchObject({ kind: 'tunnel', state: 'up' });
		expect(edge('t:wg0', 'c:h')?.state).toBe('live');
		expect(node('t:to-paris')?.state).toBe('partial');
		expect(node('p:px')).toMatchObject({ kind: 'peer', name: 'paris', state: 'offline' });
		expect(edge('t:to-paris', 'p:px')?.state).toBe('down');
		expect(node('t:not-ours')).toBeUndefined();
	});
	it('places every node inside the drawing, by kind', () => {
		const p = layout(g, 720, 420);
		expect(p.nodes).toHaveLength(g.nodes.length);
		expect(p.edges).toHaveLength(g.edges.length);
		for (const n of p.nodes) {
			expect(n.x).toBeGreaterThanOrEqual(0);
			expect(n.x).toBeLessThanOrEqual(720);
			expect(n.y).toBeGreaterThanOrEqual(0);
			expect(n.y).toBeLessThanOrEqual(420);
		}
		const at = (id: string) => p.nodes.find((n) => n.id === id)!;
		expect(at('c:h')).toMatchObject({ x: 360, y: 210 });
		expect(at('g:g1').x).toBeLessThan(at('c:h').x);
		expect(at('s:s1').x).toBeGreaterThan(at('c:h').x);
		expect(at('t:wg0').y).toBeGreaterThan(at('c:a').y);
		expect(at('p:px').y).toBeLessThan(at('c:h').y);
	});
	it('checks prefixes inside prefixes', () => {
		expect(cidrWithin('10.96.0.128/25', '10.96.0.0/24')).toBe(true);
		expect(cidrWithin('10.96.0.0/24', '10.96.0.0/24')).toBe(true);
		expect(cidrWithin('10.96.0.0/23', '10.96.0.0/24')).toBe(false);
		expect(cidrWithin('10.97.0.0/24', '10.96.0.0/16')).toBe(false);
		expect(cidrWithin('10.0.0.0/8', '0.0.0.0/0')).toBe(true);
		expect(cidrWithin('fd00::/64', 'fd00::/64')).toBe(true);
		expect(cidrWithin('bogus', '10.0.0.0/8')).toBe(false);
	});
});

describe('problem documents on form fields', () => {
	it('puts a single field error on its field', () => {
		const f = fieldErrors(new ApiError(400, 'not a prefix', 'subnet4'));
		expect(f).toEqual({ fields: { subnet4: 'not a prefix' }, general: '' });
	});
	it("spreads a 422's list by field path and under the top-level field", () => {
		const f = fieldErrors(
			new ApiError(422, 'the policy has 2 problems', undefined, [
				{ field: 'tunnels[1].esp_proposals[0]', detail: 'unknown algorithm' },
				{ field: 'name', detail: 'required' },
			]),
		);
		expect(f.fields['tunnels[1].esp_proposals[0]']).toBe('unknown algorithm');
		expect(f.fields.tunnels).toBe('tunnels[1].esp_proposals[0]: unknown algorithm');
		expect(f.fields.name).toBe('required');
		expect(f.general).toBe('the policy has 2 problems');
	});
	it('keeps errors without a field general', () => {
		expect(fieldErrors(new ApiError(409, 'name taken')).general).toBe('name taken');
		expect(fieldErrors(new Error('offline')).general).toBe('offline');
	});
});
