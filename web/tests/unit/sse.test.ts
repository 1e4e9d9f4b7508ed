import { describe, it, expect } from 'vitest';
import { SseParser } from '../../src/lib/sse';

describe('server-sent events parser', () => {
	it('parses events, ids and retry as the server sends them', () => {
		const p = new SseParser();
		const ev = p.feed('retry: 0\n\nid: 7\nevent: audit\ndata: {"id":7}\n\nid: 7\nevent: stats\ndata: {"clients":1}\n\n');
		expect(ev).toEqual([
			{ event: 'audit', data: '{"id":7}', id: '7' },
			{ event: 'stats', data: '{"clients":1}', id: '7' },
		]);
		expect(p.retry).toBe(0);
		expect(p.lastId).toBe('7');
	});
	it('takes chunks split anywhere, CRLF and CR line ends included', () => {
		const text = 'event: audit\r\ndata: a\r\ndata: b\r\n\r\nevent: x\rdata: c\r\r';
		for (let cut = 1; cut < text.length; cut++) {
			const p = new SseParser();
			const ev = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut)), ...p.end()];
			expect(ev).toEqual([
				{ event: 'audit', data: 'a\nb', id: undefined },
				{ event: 'x', data: 'c', id: undefined },
			]);
		}
	});
	it('ignores comments, unknown fields, events without data and bad retry values', () => {
		const p = new SseParser();
		expect(p.feed(': keep-alive\nfoo: bar\nevent: empty\n\nretry: soon\ndata\n\n')).toEqual([{ event: 'message', data: '', id: undefined }]);
		expect(p.retry).toBeUndefined();
	});
	it('keeps the last id across events and refuses ids with NUL', () => {
		const p = new SseParser();
		p.feed('id: 3\ndata: x\n\n');
		p.feed('id: 4\u0000\ndata: y\n\n');
		expect(p.lastId).toBe('3');
	});
	it('waits for the end of an event before emitting it', () => {
		const p = new SseParser();
		expect(p.feed('data: part')).toEqual([]);
		expect(p.feed('ial\n')).toEqual([]);
		expect(p.feed('\n')).toEqual([{ event: 'message', data: 'partial', id: undefined }]);
	});
});
