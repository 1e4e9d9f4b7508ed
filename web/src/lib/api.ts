// The one way the console talks to the server: the documented REST API (docs/openapi.json).
//
// Tokens: the access token (a JWT of a few minutes) lives only in this module's memory. The
// refresh token never reaches JavaScript: login asks for it as an HttpOnly, SameSite=Strict
// cookie limited to /api/auth (POST /api/auth/login {"refresh_cookie": true}), and a reload or
// an expiring access token gets a new one from POST /api/auth/refresh with that cookie. A script
// injected into the page could use the session while the page is open, but could not carry a
// token away that outlives it, and no token sits in localStorage.
import type { components } from './openapi';
import { assertionJSON, browserError, requestOptions } from './passkeys';

export type Schemas = components['schemas'];
export type Role = 'super_admin' | 'admin' | 'viewer';
export interface User {
	id: string;
	email: string;
	role: Role;
}

export class ApiError extends Error {
	status: number;
	field?: string;
	errors: { field: string; detail: string }[];
	constructor(status: number, detail: string, field?: string, errors?: { field: string; detail: string }[]) {
		super(detail);
		this.status = status;
		this.field = field;
		this.errors = errors ?? [];
	}
}

type Listener = (u: User | null, why?: string) => void;

let access: string | null = null;
let accessExpires = 0; // ms since the epoch
let user: User | null = null;
let refreshing: Promise<boolean> | null = null;
const listeners = new Set<Listener>();

export function currentUser(): User | null {
	return user;
}

export function onSession(fn: Listener): () => void {
	listeners.add(fn);
	return () => listeners.delete(fn);
}

function setSession(t: Schemas['Tokens'] | null, why?: string) {
	if (t) {
		access = t.access_token;
		accessExpires = Date.now() + t.expires_in * 1000;
		user = { id: t.user.id, email: t.user.email, role: t.user.role as Role };
	} else {
		access = null;
		accessExpires = 0;
		user = null;
	}
	for (const l of listeners) l(user, why);
}

async function problem(res: Response): Promise<ApiError> {
	let detail = `${res.status} ${res.statusText}`;
	let field: string | undefined;
	let errors: { field: string; detail: string }[] | undefined;
	try {
		const j = await res.json();
		if (j && typeof j.detail === 'string') detail = j.detail;
		if (j && typeof j.field === 'string') field = j.field;
		if (j && Array.isArray(j.errors)) errors = j.errors;
	} catch {
		/* not a problem document: the status says it */
	}
	return new ApiError(res.status, detail, field, errors);
}

/** The password step: a session, or (second factor on) the mfa_token for loginMfa or
 * loginPasskey and the account's second factors. */
export async function login(email: string, password: string): Promise<{ user: User } | { mfaToken: string; methods: string[] }> {
	const res = await fetch('/api/auth/login', {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		credentials: 'same-origin',
		body: JSON.stringify({ email, password, refresh_cookie: true }),
	});
	if (!res.ok) throw await problem(res);
	const j = await res.json();
	if (j.mfa_required) return { mfaToken: j.mfa_token as string, methods: (j.methods as string[] | undefined) ?? ['totp'] };
	setSession(j);
	return { user: user as User };
}

/** The second step: a TOTP or recovery code. */
export async function loginMfa(mfaToken: string, code: string): Promise<User> {
	const res = await fetch('/api/auth/login/mfa', {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		credentials: 'same-origin',
		body: JSON.stringify({ mfa_token: mfaToken, code, refresh_cookie: true }),
	});
	if (!res.ok) throw await problem(res);
	setSession(await res.json());
	return user as User;
}

async function postPublic(path: string, body: unknown): Promise<Response> {
	const res = await fetch(path, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		credentials: 'same-origin',
		body: JSON.stringify(body),
	});
	if (!res.ok) throw await problem(res);
	return res;
}

/** A passkey: the second step (with the mfa_token of the password step) or, without one, a
 * login without a password (the browser offers the passkeys it holds for this server). */
export async function loginPasskey(mfaToken?: string): Promise<User> {
	const t = mfaToken ? { mfa_token: mfaToken } : {};
	const opts = (await (await postPublic('/api/auth/login/passkey/options', t)).json()) as Schemas['PasskeyRequestOptions'];
	let cred: Credential | null;
	try {
		cred = await navigator.credentials.get({ publicKey: requestOptions(opts) });
	} catch (e) {
		throw new Error(browserError(e));
	}
	if (!cred) throw new Error('No passkey was chosen.');
	const res = await postPublic('/api/auth/login/passkey', { ...t, credential: assertionJSON(cred as PublicKeyCredential), refresh_cookie: true });
	setSession(await res.json());
	return user as User;
}

// One refresh at a time across every tab of the console: the server takes a refresh token
// presented twice as theft and ends the login, so two tabs must not race with one cookie.
async function refreshLocked(): Promise<boolean> {
	const run = async () => {
		const res = await fetch('/api/auth/refresh', {
			method: 'POST',
			credentials: 'same-origin',
		});
		if (!res.ok) return false;
		setSession(await res.json());
		return true;
	};
	const locks = (globalThis.navigator as Navigator | undefined)?.locks;
	if (locks) return locks.request('secureguard-refresh', run);
	return run();
}

/** A new access token from the refresh cookie; false when there is no session (any more). */
export function refresh(): Promise<boolean> {
	if (!refreshing) {
		refreshing = refreshLocked()
			.catch(() => false)
			.finally(() => {
				refreshing = null;
			});
	}
	return refreshing;
}

/** At start: a session from the cookie, if the browser has one. */
export async function resume(): Promise<User | null> {
	return (await refresh()) ? user : null;
}

export async function logout(): Promise<void> {
	try {
		if (access)
			await fetch('/api/auth/logout', {
				method: 'POST',
				credentials: 'same-origin',
				headers: { Authorization: `Bearer ${access}` },
			});
	} finally {
		setSession(null, 'logged out');
	}
}

async function token(): Promise<string | null> {
	// Renewed a little before it expires, so a request does not leave with a dying token.
	if (!access || Date.now() > accessExpires - 30_000) await refresh();
	return access;
}

export interface RequestOpts {
	body?: unknown;
	query?: Record<string, string | number | boolean | undefined | null>;
	signal?: AbortSignal;
	raw?: boolean; // the Response itself (downloads)
}

export function withQuery(path: string, q?: RequestOpts['query']): string {
	if (!q) return path;
	const u = new URLSearchParams();
	for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
	const s = u.toString();
	return s ? `${path}?${s}` : path;
}

export async function request<T>(method: string, path: string, o: RequestOpts = {}): Promise<T> {
	for (let attempt = 0; ; attempt++) {
		const t = await token();
		if (!t) {
			setSession(null, 'Your session has ended. Please log in again.');
			throw new ApiError(401, 'not logged in');
		}
		const headers: Record<string, string> = { Authorization: `Bearer ${t}` };
		if (o.body !== undefined) headers['Content-Type'] = 'application/json';
		const res = await fetch(withQuery(path, o.query), {
			method,
			headers,
			credentials: 'same-origin',
			body: o.body === undefined ? undefined : JSON.stringify(o.body),
			signal: o.signal,
		});
		if (res.status === 401 && attempt === 0) {
			// Revoked or expired early (logout elsewhere, a role change): try the cookie once.
			access = null;
			continue;
		}
		if (res.status === 401) {
			setSession(null, 'Your session has ended. Please log in again.');
			throw await problem(res);
		}
		if (!res.ok) throw await problem(res);
		if (o.raw) return res as unknown as T;
		if (res.status === 204) return undefined as T;
		return (await res.json()) as T;
	}
}

export const get = <T>(path: string, query?: RequestOpts['query'], signal?: AbortSignal) =>
	request<T>('GET', path, { query, signal });
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, { body: body ?? {} });
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body });
export const del = <T>(path: string) => request<T>('DELETE', path);

/** A file the API answers, saved by the browser under its own name. */
export async function download(path: string, query?: RequestOpts['query']): Promise<void> {
	const res = await request<Response>('GET', path, { query, raw: true });
	const blob = await res.blob();
	const cd = res.headers.get('Content-Disposition') ?? '';
	const m = /filename="?([^";]+)"?/.exec(cd);
	const a = document.createElement('a');
	a.href = URL.createObjectURL(blob);
	a.download = m ? m[1] : 'download';
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** An image the API answers (a QR code), as an object URL for <img>. */
export async function blobUrl(path: string, query?: RequestOpts['query']): Promise<string> {
	const res = await request<Response>('GET', path, { query, raw: true });
	return URL.createObjectURL(await res.blob());
}

/** The bearer token for the event stream (EventSource cannot send headers). */
export async function accessToken(): Promise<string | null> {
	return token();
}

export const can = {
	write: (u: User | null) => !!u && (u.role === 'admin' || u.role === 'super_admin'),
	super: (u: User | null) => !!u && u.role === 'super_admin',
};
