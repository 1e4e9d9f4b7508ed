// Topology templates for new policies, in the API's terms (docs/AGENTS.md), and the part of a
// stored policy that is edited (the rest is the server's: id, version, times, warnings).
import type { Schemas } from './api';

const tunnel = {
	name: 'site',
	type: 'ipsec',
	proposals: ['aes256gcm16-prfsha384-ecp384'],
	esp_proposals: ['aes256gcm16-ecp384'],
	auth: 'psk',
	start_action: 'start',
};

export const TEMPLATES: Record<string, Record<string, unknown>> = {
	'site-to-site': { name: 'site-to-site', description: 'two sites', enabled: true, topology: { type: 'site-to-site', left: ['site-a'], right: ['site-b'] }, tunnels: [tunnel] },
	'hub-and-spoke': { name: 'hub-and-spoke', description: 'branches through the hub', enabled: true, topology: { type: 'hub-and-spoke', hubs: ['hub'], spokes: ['branch'] }, tunnels: [{ ...tunnel, name: 'spoke' }] },
	mesh: { name: 'mesh', description: 'every pair of members', enabled: true, topology: { type: 'mesh', members: ['mesh'] }, tunnels: [{ ...tunnel, name: 'mesh' }] },
};

export function editable(p: Schemas['Policy']): Record<string, unknown> {
	const o: Record<string, unknown> = { name: p.name, description: p.description, enabled: p.enabled, priority: p.priority };
	if (p.topology) o.topology = p.topology;
	else o.applies_to = p.applies_to;
	o.tunnels = p.tunnels;
	return o;
}

/** The fields the policy form offers to add to an object, by where it is ('' the policy,
 * 'topology', 'tunnels[]' a tunnel), each with the value an added one starts as (docs/AGENTS.md
 * says what each means; the server checks the values). */
const FIELDS: Record<string, Record<string, unknown>> = {
	'': { description: '', enabled: true, priority: 100, applies_to: [], topology: { type: 'mesh', members: [] }, tunnels: [] },
	topology: { left: [], right: [], hubs: [], spokes: [], members: [] },
	'tunnels[]': {
		version: 2,
		local_addrs: [],
		remote_addrs: [],
		local_ts: [],
		remote_ts: [],
		proposals: [],
		esp_proposals: [],
		ah_proposals: [],
		auth: 'psk',
		local_id: '',
		remote_id: '',
		local_cert: '',
		secret: '',
		rekey_time: 14400,
		life_time: 15840,
		dpd_delay: 30,
		dpd_action: 'restart',
		mode: 'tunnel',
		start_action: 'start',
		encap: false,
		client_id: '',
		interface: '',
	},
};

/** The fields that can be added to the object at `path` and are not there yet, with their
 * starting values. */
export function addable(path: (string | number)[], node: Record<string, unknown>): [string, unknown][] {
	const where = path.length === 0 ? '' : path.length === 1 && path[0] === 'topology' ? 'topology' : path.length === 2 && path[0] === 'tunnels' ? 'tunnels[]' : null;
	if (where === null) return [];
	return Object.entries(FIELDS[where]).filter(([k]) => !(k in node));
}
