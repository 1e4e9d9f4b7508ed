// Shared UI state: the session and the notices ("toasts") every action reports to.
import { onSession, currentUser, type User } from './api';

export const session = $state<{ user: User | null; why: string; ready: boolean }>({ user: currentUser(), why: '', ready: false });

onSession((u, why) => {
	session.user = u;
	if (why) session.why = why;
	if (u) session.why = '';
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
