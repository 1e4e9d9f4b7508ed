// Passkeys (WebAuthn) in the console: the server's options (JSON, binary values in base64url,
// docs/SERVER.md "Passkeys") into what navigator.credentials.create() and .get() take, and
// their answers back into JSON. Written out rather than PublicKeyCredential.parse*FromJSON and
// toJSON(), which Debian's Chromium and older browsers lack. The conversions are pure (and
// unit-tested); the ceremonies below call the browser and the API.
import type { Schemas } from './api';

export function b64uEncode(buf: ArrayBuffer | Uint8Array): string {
	const b = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
	let s = '';
	for (const x of b) s += String.fromCharCode(x);
	return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function b64uDecode(s: string): Uint8Array<ArrayBuffer> {
	if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
	const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
	const out = new Uint8Array(new ArrayBuffer(bin.length));
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

type Desc = { type: string; id: string; transports?: string[] };

function descriptors(list: Desc[] | undefined): PublicKeyCredentialDescriptor[] {
	return (list ?? []).map((d) => ({
		type: 'public-key',
		id: b64uDecode(d.id),
		...(d.transports?.length ? { transports: d.transports as AuthenticatorTransport[] } : {}),
	}));
}

export function creationOptions(o: Schemas['PasskeyCreationOptions']): PublicKeyCredentialCreationOptions {
	return {
		challenge: b64uDecode(o.challenge),
		rp: { id: o.rp.id, name: o.rp.name },
		user: { id: b64uDecode(o.user.id), name: o.user.name, displayName: o.user.displayName },
		pubKeyCredParams: o.pubKeyCredParams.map((p) => ({ type: 'public-key', alg: p.alg })),
		timeout: o.timeout,
		excludeCredentials: descriptors(o.excludeCredentials),
		authenticatorSelection: {
			residentKey: o.authenticatorSelection.residentKey as ResidentKeyRequirement,
			requireResidentKey: o.authenticatorSelection.requireResidentKey,
			userVerification: o.authenticatorSelection.userVerification as UserVerificationRequirement,
		},
		attestation: o.attestation as AttestationConveyancePreference,
	};
}

export function requestOptions(o: Schemas['PasskeyRequestOptions']): PublicKeyCredentialRequestOptions {
	return {
		challenge: b64uDecode(o.challenge),
		rpId: o.rpId,
		timeout: o.timeout,
		allowCredentials: descriptors(o.allowCredentials),
		userVerification: o.userVerification as UserVerificationRequirement,
	};
}

const TRANSPORTS = ['usb', 'nfc', 'ble', 'smart-card', 'hybrid', 'internal', 'cable'];

/** navigator.credentials.create()'s answer, as POST /api/auth/passkeys takes it. */
export function attestationJSON(c: PublicKeyCredential): Schemas['PasskeyAttestation'] {
	const r = c.response as AuthenticatorAttestationResponse;
	const transports = (typeof r.getTransports === 'function' ? r.getTransports() : []).filter((t) => TRANSPORTS.includes(t));
	return {
		id: b64uEncode(c.rawId),
		type: 'public-key',
		response: {
			clientDataJSON: b64uEncode(r.clientDataJSON),
			attestationObject: b64uEncode(r.attestationObject),
			...(transports.length ? { transports: transports as Schemas['PasskeyAttestation']['response']['transports'] } : {}),
		},
	};
}

/** navigator.credentials.get()'s answer, as POST /api/auth/login/passkey takes it. */
export function assertionJSON(c: PublicKeyCredential): Schemas['PasskeyAssertion'] {
	const r = c.response as AuthenticatorAssertionResponse;
	return {
		id: b64uEncode(c.rawId),
		type: 'public-key',
		response: {
			clientDataJSON: b64uEncode(r.clientDataJSON),
			authenticatorData: b64uEncode(r.authenticatorData),
			signature: b64uEncode(r.signature),
			...(r.userHandle && r.userHandle.byteLength ? { userHandle: b64uEncode(r.userHandle) } : {}),
		},
	};
}

/** Whether this browser can use passkeys at all (WebAuthn in a secure context). */
export function passkeysAvailable(): boolean {
	return typeof window !== 'undefined' && window.isSecureContext && typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}

/** What a refusal of the browser (the user cancelled, no authenticator, timeout) means. */
export function browserError(e: unknown): string {
	if (e instanceof DOMException) {
		if (e.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
		if (e.name === 'InvalidStateError') return 'This authenticator holds a passkey of this account already.';
		if (e.name === 'SecurityError') return 'This address is not the server\'s public URL: open the console at its --public-url to use passkeys.';
		return `${e.name}: ${e.message}`;
	}
	return e instanceof Error ? e.message : String(e);
}
