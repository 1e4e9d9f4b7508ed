// Shared UI state: the session and the notices ("toasts") every action reports to.
import { onSession, currentUser, get, type User } from './api';

export const session = $state<{ user: User | null; why: string; ready: boolean; needs2fa: boolean }>({ user: currentUser(), why: '', ready: false, needs2fa: false });

onSession((u, why) => {
	const was = session.user?.id;
	session.user = u;
	if (why) session.why = why;
	if (u) session.why = '';
	// An instance that requires a second factor lets a user without one only enrol.
	if (u && u.id !== was)
		get<{ needs_2fa?: boolean }>('/api/auth/me')
			.then((m) => (session.needs2fa = !!m.needs_2fa))
			.catch(() => {});
	if (!u) session.needs2fa = false;
});

export interface Notice {
	id: number;
	kind: 'ok' | 'error';
	text: string;
}
export const notices = $state<Notice[]>([]);
let seq = 0;

export function notify(text: string, kind: 'ok' | 'error' = 'ok') {
	const id = ++seq;
	notices.push({ id, kind, text });
	setTimeout(() => {
		const i = notices.findIndex((n) => n.id === id);
		if (i >= 0) notices.splice(i, 1);
	}, kind === 'error' ? 8000 : 4000);
}

export function errText(e: unknown): string {
	return e instanceof Error ? e.message : String(e);
}
