import { describe, it, expect } from 'vitest';
import { resourceForm, resourceBody, targetForm, targetBody, healthText } from '../../src/lib/resource';

describe('resource and target forms', () => {
	it('makes a create body: empty inputs left out, numbers as numbers, rules parsed', () => {
		const f = resourceForm(null, 'gw1');
		Object.assign(f, { name: 'app', domain: 'app.example.com', aliases: 'www.example.com, x.example.com', auth: 'login', src_rate: '10', src_burst: '20' });
		f.rules.push({ path: '/admin/*', methods: 'get, post', sources: '10.0.0.0/8 192.168.0.0/16', header: 'X-Team = ops', action: 'deny' });
		f.rules.push({ path: '', methods: '', sources: '', header: 'X-Debug', action: 'auth' });
		expect(resourceBody(f, true)).toEqual({
			gateway_id: 'gw1',
			name: 'app',
			protocol: 'http',
			domain: 'app.example.com',
			aliases: ['www.example.com', 'x.example.com'],
			auth: 'login',
			api_keys: [],
			rate_limit: { per_source: { rate: 10, burst: 20 } },
			rules: [
				{ action: 'deny', path: '/admin/*', methods: ['GET', 'POST'], sources: ['10.0.0.0/8', '192.168.0.0/16'], header: { name: 'X-Team', value: 'ops' } },
				{ action: 'auth', header: { name: 'X-Debug' } },
			],
			enabled: true,
		});
	});
	it('makes an update body that clears what was emptied, and a port for tcp', () => {
		const f = resourceForm({ id: 'r', gateway_id: 'gw1', site_id: 's1', name: 'db', protocol: 'tcp', domain: null, aliases: [], port: 5432, auth: 'public', api_keys: [], rate_limit: { per_resource: { rate: 5 } }, rules: null, lb: 'least_conn', enabled: false } as never);
		expect(f.port).toBe('5432');
		expect(f.res_rate).toBe('5');
		f.site_id = '';
		f.res_rate = '';
		f.lb = '';
		const b = resourceBody(f, false);
		expect(b).toMatchObject({ site_id: null, domain: null, port: 5432, rate_limit: null, lb: null, aliases: [], rules: [], enabled: false });
		expect(b).not.toHaveProperty('gateway_id');
	});
	it('passes text that is not a number through, so the server names the field', () => {
		const f = resourceForm(null, 'g');
		f.protocol = 'udp';
		f.port = 'eighty';
		expect(resourceBody(f, true).port).toBe('eighty');
	});
	it('round-trips a target with an http health check', () => {
		const f = targetForm({ id: 't', resource_id: 'r', address: '10.0.0.2:80', weight: 5, region: 'eu', health_check: { type: 'http', path: '/healthz', interval_ms: 2000 }, created_at: 0, updated_at: 0 });
		expect(targetBody(f, false)).toEqual({ address: '10.0.0.2:80', weight: 5, region: 'eu', health_check: { type: 'http', path: '/healthz', interval_ms: 2000 } });
		f.region = '';
		f.hc_type = 'none';
		expect(targetBody(f, false)).toEqual({ address: '10.0.0.2:80', weight: 5, region: null, health_check: { type: 'none' } });
		const n = targetForm();
		n.address = '10.0.0.3:81';
		expect(targetBody(n, true)).toEqual({ address: '10.0.0.3:81', weight: 1, health_check: { type: 'tcp' } });
		expect(healthText({ type: 'http', path: '/h', interval_ms: 5000 })).toBe('GET /h, every 5 s');
		expect(healthText(null)).toBe('none');
	});
});
