import { describe, it, expect } from 'vitest';
import { b64uEncode, b64uDecode, creationOptions, requestOptions, attestationJSON, assertionJSON, browserError } from '../../src/lib/passkeys';

const bytes = (...b: number[]) => new Uint8Array(b);

describe('passkeys', () => {
	it('base64url both ways, without padding (RFC 4648 section 5)', () => {
		expect(b64uEncode(bytes())).toBe('');
		expect(b64uEncode(bytes(0xfb, 0xff))).toBe('-_8');
		expect(b64uEncode(bytes(1, 2, 3).buffer)).toBe('AQID');
		expect(Array.from(b64uDecode('-_8'))).toEqual([0xfb, 0xff]);
		for (let n = 0; n < 40; n++) {
			const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 255);
			expect(Array.from(b64uDecode(b64uEncode(b)))).toEqual(Array.from(b));
		}
		expect(() => b64uDecode('a+b/')).toThrow();
		expect(() => b64uDecode('AQ==')).toThrow();
	});
	it('the server options into what the browser takes', () => {
		const c = creationOptions({
			challenge: 'AQID',
			rp: { id: 'sg.example.com', name: 'SecureGuard' },
			user: { id: 'dXNlcg', name: 'a@b.c', displayName: 'a@b.c' },
			pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -35 }],
			timeout: 300000,
			excludeCredentials: [{ type: 'public-key', id: '-_8', transports: ['usb'] }],
			authenticatorSelection: { residentKey: 'preferred', requireResidentKey: false, userVerification: 'preferred' },
			attestation: 'none',
		});
		expect(Array.from(c.challenge as Uint8Array)).toEqual([1, 2, 3]);
		expect(new TextDecoder().decode(c.user.id as Uint8Array)).toBe('user');
		expect(c.pubKeyCredParams.map((p) => p.alg)).toEqual([-7, -35]);
		expect(Array.from(c.excludeCredentials![0].id as Uint8Array)).toEqual([0xfb, 0xff]);
		expect(c.excludeCredentials![0].transports).toEqual(['usb']);
		expect(c.attestation).toBe('none');
		const r = requestOptions({ challenge: 'AQID', rpId: 'sg.example.com', timeout: 1000, allowCredentials: [], userVerification: 'required' });
		expect(r.rpId).toBe('sg.example.com');
		expect(r.allowCredentials).toEqual([]);
		expect(r.userVerification).toBe('required');
	});
	it('the browser answers into the JSON the server takes', () => {
		const a = attestationJSON({
			rawId: bytes(9, 9).buffer,
			response: { clientDataJSON: bytes(1).buffer, attestationObject: bytes(2).buffer, getTransports: () => ['internal', 'bogus'] },
		} as unknown as PublicKeyCredential);
		expect(a).toEqual({ id: 'CQk', type: 'public-key', response: { clientDataJSON: 'AQ', attestationObject: 'Ag', transports: ['internal'] } });
		const g = assertionJSON({
			rawId: bytes(9).buffer,
			response: { clientDataJSON: bytes(1).buffer, authenticatorData: bytes(2).buffer, signature: bytes(3).buffer, userHandle: null },
		} as unknown as PublicKeyCredential);
		expect(g).toEqual({ id: 'CQ', type: 'public-key', response: { clientDataJSON: 'AQ', authenticatorData: 'Ag', signature: 'Aw' } });
	});
	it('says what a refusal of the browser means', () => {
		expect(browserError(new DOMException('x', 'NotAllowedError'))).toMatch(/cancelled/);
		expect(browserError(new Error('boom'))).toBe('boom');
	});
});
