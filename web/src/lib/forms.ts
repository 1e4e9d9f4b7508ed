// Problem documents onto form fields: {"field": "subnet4", "detail"} or a 422's "errors" list
// ("tunnels[1].esp_proposals[0]") become messages by the input they name.
import { ApiError } from './api';

export function fieldErrors(e: unknown): { fields: Record<string, string>; general: string } {
	const fields: Record<string, string> = {};
	if (!(e instanceof ApiError)) return { fields, general: e instanceof Error ? e.message : String(e) };
	for (const p of e.errors) {
		const key = p.field || '';
		fields[key] = fields[key] ? `${fields[key]}; ${p.detail}` : p.detail;
		// Also under the top-level name, so a form without the nested input still shows it.
		const top = key.split(/[.[]/)[0];
		if (top && top !== key) fields[top] = fields[top] ? `${fields[top]}; ${key}: ${p.detail}` : `${key}: ${p.detail}`;
	}
	if (e.field && !e.errors.length) fields[e.field] = e.message;
	const general = e.errors.length || e.field ? (e.status === 422 ? e.message : '') : e.message;
	return { fields, general };
}
