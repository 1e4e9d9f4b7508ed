// The gateway's resources and targets as forms (docs/GATEWAY.md), and back into the API's
// bodies (pure; tests/unit/resource.test.ts). Inputs are text; an empty one means "not set":
// left out when creating, null when changing (the API clears a nullable field with null).
import type { Schemas } from './api';

export interface RuleForm {
	path: string;
	methods: string; // comma-separated
	sources: string; // comma-separated CIDRs
	header: string; // NAME or NAME=VALUE
	action: 'allow' | 'deny' | 'auth';
}
export interface ResourceForm {
	gateway_id: string;
	site_id: string;
	name: string;
	protocol: 'http' | 'tcp' | 'udp';
	domain: string;
	aliases: string;
	port: string;
	auth: 'public' | 'login' | 'api_key';
	api_keys: string;
	src_rate: string;
	src_burst: string;
	res_rate: string;
	res_burst: string;
	lb: string;
	enabled: boolean;
	rules: RuleForm[];
}
export interface TargetForm {
	address: string;
	weight: string;
	region: string;
	hc_type: 'none' | 'tcp' | 'http';
	hc_path: string;
	hc_interval_ms: string;
	hc_timeout_ms: string;
}

const list = (s: string) =>
	s
		.split(/[,\s]+/)
		.map((x) => x.trim())
		.filter(Boolean);
const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));
/** A whole number from an input, or the text itself (so the server names the field) */
const num = (s: string): number | string => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : s.trim());

export function resourceForm(r?: Schemas['Resource'] | null, gateway_id = ''): ResourceForm {
	const rl = (r?.rate_limit ?? null) as { per_source?: { rate: number; burst?: number }; per_resource?: { rate: number; burst?: number } } | null;
	return {
		gateway_id: r?.gateway_id ?? gateway_id,
		site_id: r?.site_id ?? '',
		name: r?.name ?? '',
		protocol: r?.protocol ?? 'http',
		domain: r?.domain ?? '',
		aliases: (r?.aliases ?? []).join(', '),
		port: text(r?.port),
		auth: r?.auth ?? 'public',
		api_keys: (r?.api_keys ?? []).join('\n'),
		src_rate: text(rl?.per_source?.rate),
		src_burst: text(rl?.per_source?.burst),
		res_rate: text(rl?.per_resource?.rate),
		res_burst: text(rl?.per_resource?.burst),
		lb: r?.lb ?? '',
		enabled: r?.enabled ?? true,
		rules: (r?.rules ?? []).map((x) => ({
			path: x.path ?? '',
			methods: (x.methods ?? []).join(', '),
			sources: (x.sources ?? []).join(', '),
			header: x.header ? (x.header.value !== undefined ? `${x.header.name}=${x.header.value}` : x.header.name) : '',
			action: x.action,
		})),
	};
}

function bucket(rate: string, burst: string): Record<string, unknown> | undefined {
	if (!rate.trim() && !burst.trim()) return undefined;
	const b: Record<string, unknown> = { rate: rate.trim() ? num(rate) : null };
	if (burst.trim()) b.burst = num(burst);
	return b;
}

/** The body of POST /api/v1/resources (creating) or PUT /api/v1/resources/{id}. */
export function resourceBody(f: ResourceForm, creating: boolean): Record<string, unknown> {
	const b: Record<string, unknown> = {};
	const opt = (k: string, v: unknown, empty: boolean) => {
		if (!empty) b[k] = v;
		else if (!creating) b[k] = null;
	};
	if (creating) b.gateway_id = f.gateway_id;
	opt('site_id', f.site_id, !f.site_id);
	if (f.name.trim()) b.name = f.name.trim();
	b.protocol = f.protocol;
	const http = f.protocol === 'http';
	opt('domain', f.domain.trim(), !http || !f.domain.trim());
	if (http) b.aliases = list(f.aliases);
	else if (!creating) b.aliases = [];
	opt('port', num(f.port), http || !f.port.trim());
	b.auth = f.auth;
	b.api_keys = f.auth === 'api_key' ? list(f.api_keys) : [];
	const ps = bucket(f.src_rate, f.src_burst);
	const pr = bucket(f.res_rate, f.res_burst);
	opt('rate_limit', { ...(ps ? { per_source: ps } : {}), ...(pr ? { per_resource: pr } : {}) }, !ps && !pr);
	b.rules = f.rules.map((r) => {
		const o: Record<string, unknown> = { action: r.action };
		if (r.path.trim()) o.path = r.path.trim();
		if (r.methods.trim()) o.methods = list(r.methods).map((m) => m.toUpperCase());
		if (r.sources.trim()) o.sources = list(r.sources);
		if (r.header.trim()) {
			const h = r.header.trim();
			const i = h.indexOf('=');
			o.header = i < 0 ? { name: h } : { name: h.slice(0, i).trim(), value: h.slice(i + 1).trim() };
		}
		return o;
	});
	opt('lb', f.lb, !f.lb);
	b.enabled = f.enabled;
	return b;
}

export function targetForm(t?: Schemas['Target'] | null): TargetForm {
	const h = (t?.health_check ?? null) as { type?: 'none' | 'tcp' | 'http'; path?: string; interval_ms?: number; timeout_ms?: number } | null;
	return {
		address: t?.address ?? '',
		weight: text(t?.weight ?? 1),
		region: t?.region ?? '',
		hc_type: h?.type ?? (t ? 'none' : 'tcp'), // a new target gets a connect check unless told
		hc_path: h?.path ?? '',
		hc_interval_ms: text(h?.interval_ms),
		hc_timeout_ms: text(h?.timeout_ms),
	};
}

/** The body of POST /api/v1/resources/{id}/targets or PUT /api/v1/targets/{id}. */
export function targetBody(f: TargetForm, creating: boolean): Record<string, unknown> {
	const b: Record<string, unknown> = { address: f.address.trim() };
	if (f.weight.trim()) b.weight = num(f.weight);
	if (f.region.trim()) b.region = f.region.trim();
	else if (!creating) b.region = null;
	const hc: Record<string, unknown> = { type: f.hc_type };
	if (f.hc_type === 'http' && f.hc_path.trim()) hc.path = f.hc_path.trim();
	if (f.hc_type !== 'none' && f.hc_interval_ms.trim()) hc.interval_ms = num(f.hc_interval_ms);
	if (f.hc_type !== 'none' && f.hc_timeout_ms.trim()) hc.timeout_ms = num(f.hc_timeout_ms);
	b.health_check = hc;
	return b;
}

/** A health check in a few words, for the targets' table. */
export function healthText(h: unknown): string {
	const x = h as { type?: string; path?: string; interval_ms?: number } | null;
	if (!x || x.type === 'none') return 'none';
	const every = x.interval_ms ? `, every ${x.interval_ms / 1000} s` : '';
	return x.type === 'http' ? `GET ${x.path ?? '/'}${every}` : `tcp connect${every}`;
}
