// Server-sent events (text/event-stream, WHATWG HTML "Server-sent events") read with fetch, so
// the request carries the access token in its Authorization header, which EventSource cannot.
// The server answers each request with the events since the last id it saw (or after waiting
// for one) and ends the response; the loop asks again from the last id, as EventSource does
// with Last-Event-ID.

export interface SseEvent {
	event: string;
	data: string;
	id?: string;
}

/** Incremental parser: feed chunks, get complete events. */
export class SseParser {
	private buf = '';
	private data: string[] = [];
	private event = '';
	private id: string | undefined;
	lastId: string | undefined;
	retry: number | undefined;

	feed(chunk: string): SseEvent[] {
		this.buf += chunk;
		const out: SseEvent[] = [];
		for (;;) {
			const m = /\r\n|\r|\n/.exec(this.buf);
			if (!m) break;
			// A lone CR at the very end may be the first half of CRLF: wait for more.
			if (m[0] === '\r' && m.index === this.buf.length - 1) break;
			const line = this.buf.slice(0, m.index);
			this.buf = this.buf.slice(m.index + m[0].length);
			this.line(line, out);
		}
		return out;
	}

	/** At the end of the stream: a line ended by a lone CR that was waiting for an LF. */
	end(): SseEvent[] {
		if (!this.buf.endsWith('\r')) return [];
		const line = this.buf.slice(0, -1);
		this.buf = '';
		const out: SseEvent[] = [];
		this.line(line, out);
		return out;
	}

	private line(line: string, out: SseEvent[]) {
		if (line === '') {
			if (this.id !== undefined) this.lastId = this.id;
			if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
			this.data = [];
			this.event = '';
			return;
		}
		if (line.startsWith(':')) return;
		const i = line.indexOf(':');
		const field = i < 0 ? line : line.slice(0, i);
		let value = i < 0 ? '' : line.slice(i + 1);
		if (value.startsWith(' ')) value = value.slice(1);
		if (field === 'data') this.data.push(value);
		else if (field === 'event') this.event = value;
		else if (field === 'id' && !value.includes('\0')) this.id = value;
		else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
	}
}

export interface StreamOpts {
	url: (lastId: string | undefined) => string;
	headers: () => Promise<Record<string, string> | null>;
	onEvent: (e: SseEvent) => void;
	onState?: (live: boolean) => void;
}

/** Runs until stop() is called; reconnects with a growing pause after errors. */
export function stream(o: StreamOpts): { stop: () => void } {
	let stopped = false;
	let ctl: AbortController | null = null;
	let lastId: string | undefined;
	let pause = 0;
	(async () => {
		while (!stopped) {
			const parser = new SseParser();
			try {
				const h = await o.headers();
				if (!h) throw new Error('no session');
				ctl = new AbortController();
				const res = await fetch(o.url(lastId), { headers: { Accept: 'text/event-stream', ...h }, signal: ctl.signal });
				if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
				o.onState?.(true);
				const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
				for (;;) {
					const { value, done } = await reader.read();
					if (done) {
						for (const e of parser.end()) o.onEvent(e);
						break;
					}
					for (const e of parser.feed(value)) o.onEvent(e);
					if (parser.lastId !== undefined) lastId = parser.lastId;
				}
				pause = parser.retry ?? 0;
			} catch {
				if (stopped) break;
				o.onState?.(false);
				pause = Math.min(Math.max(pause * 2, 1000), 15000);
			}
			if (pause) await new Promise((r) => setTimeout(r, pause));
		}
	})();
	return {
		stop: () => {
			stopped = true;
			ctl?.abort();
		},
	};
}
