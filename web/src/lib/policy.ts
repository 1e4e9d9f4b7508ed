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
