/* The management server's API, described once (api.h says what comes from it). Reading order:
 * the reusable schemas, the inputs, the outputs, then the routes. */
#include "server/api.h"
#include "server/api_formats.h"
#include "server/cursor.h"

#define NPROPS(a) .props = a, .nprops = (int)SG_ARRAY_LEN(a)
#define R	  P_REQUIRED

static const char *const roles[] = {"super_admin", "admin", "viewer", NULL};

/* ---- reusable values ----------------------------------------------------------------------- */

static const struct api_schema uuid = {.type = AT_STRING, .format = &api_f_uuid,
				       .example_json = "\"3f0c2a5e-8d4b-4c1e-9a57-2b6f0d9e4c11\""};
static const struct api_schema uuid_null = {.type = AT_STRING, .format = &api_f_uuid,
					    .nullable = true};
static const struct api_schema str = {.type = AT_STRING, .allow_empty = true};
static const struct api_schema str_null = {.type = AT_STRING, .allow_empty = true,
					   .nullable = true};
static const struct api_schema int64 = {.type = AT_INTEGER, .int_format = "int64"};
static const struct api_schema int64_null = {.type = AT_INTEGER, .int_format = "int64",
					     .nullable = true};
/* Counters and times: at most 2^53 - 1, so a JavaScript client reads them exactly. */
#define JS_MAX_SAFE 9007199254740991LL
static const struct api_schema count = {.type = AT_INTEGER, .int_format = "int64",
					.has_min = true, .min = 0, .has_max = true,
					.max = JS_MAX_SAFE};
static const struct api_schema boolean = {.type = AT_BOOLEAN};
static const struct api_schema unix_s = {.type = AT_INTEGER, .int_format = "int64",
					 .description = "Unix time, seconds"};
static const struct api_schema unix_s_null = {.type = AT_INTEGER, .int_format = "int64",
					      .nullable = true,
					      .description = "Unix time, seconds"};
static const struct api_schema str_list = {.type = AT_ARRAY, .items = &str};
static const struct api_schema role = {.type = AT_STRING, .enumv = roles};
static const struct api_schema name64 = {.type = AT_STRING, .format = &api_f_name, .min_len = 1,
					 .max_len = 64, .example_json = "\"office\""};
static const struct api_schema email = {.type = AT_STRING, .format = &api_f_email,
					.max_len = 254,
					.example_json = "\"admin@example.com\""};
static const struct api_schema wg_key_null = {.type = AT_STRING, .format = &api_f_wg_key,
					      .nullable = true};
static const struct api_schema fips_key_null = {.type = AT_STRING, .format = &api_f_fips_key,
						.nullable = true};
static const struct api_schema cidr = {.type = AT_STRING, .format = &api_f_cidr,
				       .example_json = "\"10.8.0.0/24\""};
static const struct api_schema cidr_list = {.type = AT_ARRAY, .items = &cidr, .max_items = 256};
static const struct api_schema ip = {.type = AT_STRING, .format = &api_f_ip};

/* ---- errors -------------------------------------------------------------------------------- */

static const char *const about_blank[] = {"about:blank", NULL};
static const struct api_schema problem_type = {.type = AT_STRING, .enumv = about_blank};
static const struct api_prop problem_item_props[] = {
    {"field", &str, R, "the input at fault, as a path: tunnels[1].esp_proposals[0]"},
    {"detail", &str, R, NULL},
};
static const struct api_schema problem_item = {
    .name = "ProblemItem", .type = AT_OBJECT, NPROPS(problem_item_props),
    .description = "One problem (or caveat) of an input, by field."};
static const struct api_schema problem_items = {.type = AT_ARRAY, .items = &problem_item};
static const struct api_prop problem_props[] = {
    {"type", &problem_type, R, "always about:blank: the status and field say which error"},
    {"title", &str, R, "the status's reason phrase"},
    {"status", &int64, R, "the HTTP status"},
    {"detail", &str, R, "what is wrong, for a human"},
    {"field", &str, 0, "the body field or parameter at fault, when one is"},
    {"errors", &problem_items, 0, "every problem, when several are found at once (422)"},
    {"warnings", &problem_items, 0, "caveats that do not refuse the input"},
};
const struct api_schema api_problem = {
    .name = "Problem", .type = AT_OBJECT, NPROPS(problem_props),
    .description = "An error (RFC 9457 problem document, application/problem+json)."};

/* ---- inputs -------------------------------------------------------------------------------- */

static const struct api_schema password_login = {.type = AT_STRING, .min_len = 1,
						 .max_len = 1024, .format = &api_f_password};
static const struct api_prop login_props[] = {
    {"email", &email, R, NULL},
    {"password", &password_login, R, NULL},
    {"refresh_cookie", &boolean, 0,
     "true: the refresh token comes as an HttpOnly, SameSite=Strict cookie (sg_refresh, Path "
     "/api/auth) instead of in the body, for browsers (the admin console)"}};
static const struct api_schema login_in = {.name = "Login", .type = AT_OBJECT,
					   NPROPS(login_props)};

static const struct api_schema refresh_token = {.type = AT_STRING, .format = &api_f_refresh};
static const struct api_prop refresh_props[] = {
    {"refresh_token", &refresh_token, 0,
     "without it, the sg_refresh cookie's token (rotated in a new cookie)"}};
static const struct api_schema refresh_in = {.name = "Refresh", .type = AT_OBJECT,
					     NPROPS(refresh_props)};
static const struct api_prop logout_props[] = {
    {"refresh_token", &refresh_token, 0,
     "revoke this login only; without it, the login of the sg_refresh cookie when the request "
     "has one (the cookie is cleared), else every refresh token of the user"}};
static const struct api_schema logout_in = {.name = "Logout", .type = AT_OBJECT,
					    NPROPS(logout_props)};

static const struct api_schema mfa_token = {.type = AT_STRING, .min_len = 8, .max_len = 64,
					    .format = &api_f_mfa_token};
static const struct api_schema mfa_code = {
    .type = AT_STRING, .min_len = 6, .max_len = 32,
    .description = "the 6 digits the authenticator app shows, or a recovery code "
		   "(xxxx-xxxx-xxxx-xxxx; dashes, spaces and case do not matter)"};
static const struct api_prop login_mfa_props[] = {
    {"mfa_token", &mfa_token, R, "from the password step; single use, 5 minutes"},
    {"code", &mfa_code, R, NULL},
    {"refresh_cookie", &boolean, 0, "as at POST /api/auth/login"}};
static const struct api_schema login_mfa_in = {.name = "LoginMfa", .type = AT_OBJECT,
					       NPROPS(login_mfa_props)};
static const struct api_prop totp_code_props[] = {{"code", &mfa_code, R, NULL}};
static const struct api_schema totp_code_in = {.name = "TotpCode", .type = AT_OBJECT,
					       NPROPS(totp_code_props)};

/* Passkeys (routes_passkeys.c): the browser's PublicKeyCredential in its JSON form (WebAuthn
 * Level 3 section 5.1, toJSON()), binary values in base64url. */
static const char *const public_key_only[] = {"public-key", NULL};
static const struct api_schema cred_type = {.type = AT_STRING, .enumv = public_key_only};
static const struct api_schema cred_id = {.type = AT_STRING, .format = &api_f_b64url,
					  .min_len = 2, .max_len = 1364,
					  .description = "the credential id (at most 1023 bytes)"};
static const struct api_schema client_data = {
    .type = AT_STRING, .format = &api_f_b64url, .min_len = 2, .max_len = 5462,
    .description = "the client data JSON (at most 4096 bytes): type, challenge, origin"};
static const struct api_schema att_object = {
    .type = AT_STRING, .format = &api_f_b64url, .min_len = 2, .max_len = 10923,
    .description = "the CBOR attestation object (at most 8192 bytes): formats none and packed "
		   "self-attestation are accepted"};
static const struct api_schema auth_data_s = {
    .type = AT_STRING, .format = &api_f_b64url, .min_len = 50, .max_len = 2731,
    .description = "the authenticator data (37 to 2048 bytes)"};
static const struct api_schema sig_s = {.type = AT_STRING, .format = &api_f_b64url,
					.min_len = 2, .max_len = 171,
					.description = "DER ECDSA signature (at most 128 bytes)"};
static const struct api_schema user_handle = {.type = AT_STRING, .format = &api_f_b64url,
					      .nullable = true, .min_len = 2, .max_len = 86};
static const char *const transport_names[] = {"usb",	  "nfc",      "ble",   "smart-card",
					      "hybrid", "internal", "cable", NULL};
static const struct api_schema transport = {.type = AT_STRING, .enumv = transport_names};
static const struct api_schema transports = {.type = AT_ARRAY, .items = &transport,
					     .max_items = 8};
static const struct api_schema attachment = {.type = AT_STRING, .nullable = true,
					     .max_len = 32};
static const struct api_schema ext_results = {
    .type = AT_OBJECT, .open = true,
    .description = "the client's extension results (not used)"};
static const struct api_prop att_resp_props[] = {
    {"clientDataJSON", &client_data, R, NULL},
    {"attestationObject", &att_object, R, NULL},
    {"transports", &transports, 0, "how the browser reaches the authenticator (kept, offered "
				   "back at login)"},
};
static const struct api_schema att_resp = {.type = AT_OBJECT, NPROPS(att_resp_props)};
static const struct api_prop att_cred_props[] = {
    {"id", &cred_id, R, NULL},
    {"rawId", &cred_id, 0, "the same as id"},
    {"type", &cred_type, R, NULL},
    {"response", &att_resp, R, NULL},
    {"authenticatorAttachment", &attachment, 0, NULL},
    {"clientExtensionResults", &ext_results, 0, NULL},
};
static const struct api_schema att_cred = {.name = "PasskeyAttestation", .type = AT_OBJECT,
					   NPROPS(att_cred_props)};
static const struct api_schema passkey_name = {.type = AT_STRING, .format = &api_f_name,
					       .min_len = 1, .max_len = 64,
					       .example_json = "\"YubiKey\""};
static const struct api_prop passkey_reg_props[] = {
    {"name", &passkey_name, 0, "a name to tell it from the others (default \"Passkey\")"},
    {"credential", &att_cred, R, "navigator.credentials.create()'s answer"},
};
static const struct api_schema passkey_reg_in = {.name = "PasskeyRegistration", .type = AT_OBJECT,
						 NPROPS(passkey_reg_props)};
static const struct api_prop passkey_rename_props[] = {{"name", &passkey_name, R, NULL}};
static const struct api_schema passkey_rename_in = {.name = "PasskeyRename", .type = AT_OBJECT,
						    NPROPS(passkey_rename_props)};
static const struct api_prop asr_resp_props[] = {
    {"clientDataJSON", &client_data, R, NULL},
    {"authenticatorData", &auth_data_s, R, NULL},
    {"signature", &sig_s, R, NULL},
    {"userHandle", &user_handle, 0, "the account's id, from a discoverable passkey"},
};
static const struct api_schema asr_resp = {.type = AT_OBJECT, NPROPS(asr_resp_props)};
static const struct api_prop asr_cred_props[] = {
    {"id", &cred_id, R, NULL},
    {"rawId", &cred_id, 0, "the same as id"},
    {"type", &cred_type, R, NULL},
    {"response", &asr_resp, R, NULL},
    {"authenticatorAttachment", &attachment, 0, NULL},
    {"clientExtensionResults", &ext_results, 0, NULL},
};
static const struct api_schema asr_cred = {.name = "PasskeyAssertion", .type = AT_OBJECT,
					   NPROPS(asr_cred_props)};
static const struct api_prop pk_login_opts_props[] = {
    {"mfa_token", &mfa_token, 0,
     "from the password step: options for that account's passkeys; without it, options for a "
     "login without a password (any passkey of this server, user verification required)"}};
static const struct api_schema pk_login_opts_in = {.name = "PasskeyLoginOptionsRequest",
						   .type = AT_OBJECT, NPROPS(pk_login_opts_props)};
static const struct api_prop pk_login_props[] = {
    {"credential", &asr_cred, R, "navigator.credentials.get()'s answer"},
    {"mfa_token", &mfa_token, 0,
     "the second step of a password login (the options were asked with it)"},
    {"refresh_cookie", &boolean, 0, "as at POST /api/auth/login"},
};
static const struct api_schema pk_login_in = {.name = "PasskeyLogin", .type = AT_OBJECT,
					      NPROPS(pk_login_props)};

static const struct api_schema empty_in = {
    .name = "Empty", .type = AT_OBJECT,
    .description = "No fields: an empty object, or no body at all."};

static const struct api_schema wg_key = {.type = AT_STRING, .format = &api_f_wg_key};
static const struct api_schema challenge = {.type = AT_STRING, .format = &api_f_challenge};
static const struct api_schema proof = {
    .type = AT_STRING, .format = &api_f_proof,
    .description = "base64url(HMAC-SHA-384(X25519(client_priv, server_public_key), "
		   "\"secureguard client auth v1\" || challenge || public_key || "
		   "server_public_key))"};
static const struct api_prop client_auth_props[] = {
    {"public_key", &wg_key, R, "the client's classic (X25519) public key"},
    {"challenge", &challenge, R, NULL},
    {"proof", &proof, R, NULL},
};
static const struct api_schema client_auth_in = {.name = "ClientAuth", .type = AT_OBJECT,
						 NPROPS(client_auth_props)};

static const struct api_schema password_new = {.type = AT_STRING, .min_len = 12,
					       .max_len = 1024, .format = &api_f_password};
static const struct api_prop user_create_props[] = {
    {"email", &email, R, NULL},
    {"password", &password_new, R, NULL},
    {"role", &role, R, NULL},
    {"enabled", &boolean, 0, "default true"},
};
static const struct api_schema user_create_in = {.name = "UserCreate", .type = AT_OBJECT,
						 NPROPS(user_create_props)};
static const struct api_prop user_update_props[] = {
    {"email", &email, 0, NULL},
    {"password", &password_new, 0, NULL},
    {"role", &role, 0, NULL},
    {"enabled", &boolean, 0, NULL},
    {"unlock", &boolean, 0, "true clears a lockout"},
};
static const struct api_schema user_update_in = {.name = "UserUpdate", .type = AT_OBJECT,
						 .min_props = 1, NPROPS(user_update_props)};

static const struct api_schema days = {.type = AT_INTEGER, .int_format = "int64",
				       .has_min = true, .min = 1, .has_max = true, .max = 3650,
				       .nullable = true};
static const struct api_prop apikey_create_props[] = {
    {"name", &name64, R, NULL},
    {"role", &role, 0, "at most the caller's role (403 otherwise); default the caller's"},
    {"expires_in_days", &days, 0, "null or absent: no expiry"},
};
static const struct api_schema apikey_create_in = {.name = "ApiKeyCreate", .type = AT_OBJECT,
						   NPROPS(apikey_create_props)};

static const struct api_schema subnet4 = {.type = AT_STRING, .format = &api_f_subnet4,
					  .nullable = true, .example_json = "\"10.8.0.0/24\""};
static const struct api_schema subnet6 = {.type = AT_STRING, .format = &api_f_subnet6,
					  .nullable = true};
static const struct api_schema dns_list = {.type = AT_ARRAY, .items = &ip, .max_items = 8};
static const struct api_schema mtu = {.type = AT_INTEGER, .int_format = "int64",
				      .has_min = true, .min = 1280, .has_max = true, .max = 9000,
				      .nullable = true};
static const struct api_schema mfa_hours = {.type = AT_INTEGER, .int_format = "int64",
					    .has_min = true, .min = 1, .has_max = true, .max = 720};
static const struct api_prop net_create_props[] = {
    {"name", &name64, R, "unique without regard to case or normalisation (409)"},
    {"subnet4", &subnet4, 0, "at least one of subnet4 and subnet6 (400 naming subnet4)"},
    {"subnet6", &subnet6, 0, NULL},
    {"dns_servers", &dns_list, 0, NULL},
    {"fips_required", &boolean, 0, "default: the instance's settings.fips_required"},
    {"mtu", &mtu, 0, NULL},
    {"mfa_required", &boolean, 0,
     "default false. true: a client (not a hub) is a peer of the hubs only while its owner "
     "holds a VPN session opened with password and TOTP (POST /api/vpn-sessions, "
     "`secureguard connect`)"},
    {"mfa_session_hours", &mfa_hours, 0, "how long a VPN session lasts at most; default 8"},
};
static const struct api_schema net_create_in = {.name = "NetworkCreate", .type = AT_OBJECT,
						NPROPS(net_create_props)};
static const struct api_prop net_update_props[] = {
    {"name", &name64, 0, NULL},
    {"subnet4", &subnet4, 0, "only while the network has no clients (409)"},
    {"subnet6", &subnet6, 0, "only while the network has no clients (409)"},
    {"dns_servers", &dns_list, 0, NULL},
    {"fips_required", &boolean, 0, NULL},
    {"mtu", &mtu, 0, NULL},
    {"mfa_required", &boolean, 0, "turning it on removes the clients without a session from "
				  "the hubs at once"},
    {"mfa_session_hours", &mfa_hours, 0, "sessions already open keep their end"},
};
static const struct api_schema net_update_in = {.name = "NetworkUpdate", .type = AT_OBJECT,
						.min_props = 1, NPROPS(net_update_props)};

static const struct api_schema description = {.type = AT_STRING, .format = &api_f_text,
					      .max_len = 256, .allow_empty = true};
static const struct api_schema keepalive = {.type = AT_INTEGER, .int_format = "int64",
					    .has_min = true, .min = 0, .has_max = true,
					    .max = 65535};
static const struct api_schema endpoint_null = {.type = AT_STRING, .format = &api_f_endpoint,
						.nullable = true};
static const struct api_schema port_null = {.type = AT_INTEGER, .int_format = "int64",
					    .has_min = true, .min = 1, .has_max = true,
					    .max = 65535, .nullable = true};
static const struct api_prop client_create_props[] = {
    {"network_id", &uuid, R, NULL},
    {"name", &name64, R, NULL},
    {"description", &description, 0, NULL},
    {"public_key", &wg_key_null, 0,
     "client-supplied classic public key; the config then has no private key"},
    {"public_key_fips", &fips_key_null, 0, "client-supplied FIPS public key"},
    {"allowed_ips", &cidr_list, 0, "default: the network's subnets for a relay, the client's "
				   "addresses otherwise"},
    {"persistent_keepalive", &keepalive, 0, "seconds; 0 = off"},
    {"is_relay", &boolean, 0, "a hub: needs endpoint"},
    {"endpoint", &endpoint_null, 0, "required for a relay"},
    {"listen_port", &port_null, 0, NULL},
    {"enabled", &boolean, 0, "default true"},
    {"owner_id", &uuid_null, 0,
     "the user whose VPN session (POST /api/vpn-sessions) gates it on an mfa_required "
     "network; default: the creating user (an API key's user); null: none"},
};
static const struct api_schema client_create_in = {.name = "ClientCreate", .type = AT_OBJECT,
						   NPROPS(client_create_props)};
static const struct api_prop client_update_props[] = {
    {"name", &name64, 0, NULL},
    {"description", &description, 0, NULL},
    {"allowed_ips", &cidr_list, 0, NULL},
    {"persistent_keepalive", &keepalive, 0, NULL},
    {"is_relay", &boolean, 0, NULL},
    {"endpoint", &endpoint_null, 0, NULL},
    {"listen_port", &port_null, 0, NULL},
    {"enabled", &boolean, 0, NULL},
    {"owner_id", &uuid_null, 0, "another owner (or null) ends the client's open VPN session"},
};
static const struct api_schema client_update_in = {.name = "ClientUpdate", .type = AT_OBJECT,
						   .min_props = 1, NPROPS(client_update_props)};
static const struct api_prop regen_props[] = {
    {"public_key", &wg_key_null, 0, "replace the classic key with this public key"},
    {"public_key_fips", &fips_key_null, 0, "replace the FIPS key with this public key"},
};
static const struct api_schema regen_in = {
    .name = "RegenerateKeys", .type = AT_OBJECT, NPROPS(regen_props),
    .description = "Empty: new server-generated keys. With keys: those public keys instead."};

static const struct api_schema vpn_client = {.type = AT_STRING, .format = &api_f_text,
					     .min_len = 1, .max_len = 64};
static const struct api_schema vpn_duration = {.type = AT_INTEGER, .int_format = "int64",
					       .has_min = true, .min = 10, .has_max = true,
					       .max = 2592000};
static const struct api_prop vpn_open_props[] = {
    {"client", &vpn_client, R, "the client's id or name, among the clients the account owns"},
    {"email", &email, R, "the owner's account"},
    {"password", &password_login, R, NULL},
    {"code", &mfa_code, R, NULL},
    {"duration_seconds", &vpn_duration, 0,
     "a shorter session than the network's mfa_session_hours (longer is cut to it)"},
};
static const struct api_schema vpn_open_in = {.name = "VpnSessionOpen", .type = AT_OBJECT,
					      NPROPS(vpn_open_props)};
static const struct api_schema vpn_token = {.type = AT_STRING, .format = &api_f_text,
					    .min_len = 8, .max_len = 64};
static const struct api_prop vpn_end_props[] = {
    {"session_token", &vpn_token, R, "sgv_...: from POST /api/vpn-sessions"}};
static const struct api_schema vpn_end_in = {.name = "VpnSessionEnd", .type = AT_OBJECT,
					     NPROPS(vpn_end_props)};

static const struct api_schema duration = {.type = AT_INTEGER, .int_format = "int64",
					   .has_min = true, .min = 3600, .has_max = true,
					   .max = 604800, .default_json = "3600"};
static const struct api_schema max_uses = {.type = AT_INTEGER, .int_format = "int64",
					   .has_min = true, .min = 0, .has_max = true,
					   .max = 10000, .default_json = "1"};
static const struct api_schema name64_null = {.type = AT_STRING, .format = &api_f_name,
					      .min_len = 1, .max_len = 64, .nullable = true};
static const struct api_prop temp_create_props[] = {
    {"network_id", &uuid, R, NULL},
    {"duration_seconds", &duration, 0, "1 hour to 7 days"},
    {"max_uses", &max_uses, 0, "0 = unlimited"},
    {"allowed_ips", &cidr_list, 0, NULL},
    {"name", &name64_null, 0, NULL},
};
static const struct api_schema temp_create_in = {.name = "TempAccessCreate", .type = AT_OBJECT,
						 NPROPS(temp_create_props)};

static const char *const conn_events[] = {"connect", "disconnect", "handshake", NULL};
static const char *const modes[] = {"classic", "fips", NULL};
static const struct api_schema conn_event = {.type = AT_STRING, .enumv = conn_events};
static const struct api_schema mode_null = {.type = AT_STRING, .enumv = modes,
					    .nullable = true};
static const struct api_schema ip_null = {.type = AT_STRING, .format = &api_f_ip,
					  .nullable = true};
static const struct api_schema reason_null = {.type = AT_STRING, .format = &api_f_text,
					      .max_len = 256, .allow_empty = true,
					      .nullable = true};
static const struct api_schema count_null = {.type = AT_INTEGER, .int_format = "int64",
					     .has_min = true, .min = 0, .has_max = true,
					     .max = JS_MAX_SAFE, .nullable = true};
static const struct api_prop conn_report_props[] = {
    {"client_id", &uuid, 0, "required unless a client session reports about itself"},
    {"event", &conn_event, R, NULL},
    {"source_ip", &ip_null, 0, NULL},
    {"source_port", &port_null, 0, NULL},
    {"crypto_mode", &mode_null, 0, NULL},
    {"bytes_sent", &count, 0, NULL},
    {"bytes_received", &count, 0, NULL},
    {"packets_sent", &count, 0, NULL},
    {"packets_received", &count, 0, NULL},
    {"session_duration_ms", &count_null, 0, NULL},
    {"disconnect_reason", &reason_null, 0, NULL},
};
static const struct api_schema conn_report_in = {.name = "ConnectionReport", .type = AT_OBJECT,
						 NPROPS(conn_report_props)};

static const struct api_schema instance_name = {.type = AT_STRING, .format = &api_f_name,
						.min_len = 1, .max_len = 128};
static const struct api_schema email_null = {.type = AT_STRING, .format = &api_f_email,
					     .max_len = 254, .nullable = true};
static const struct api_prop settings_update_props[] = {
    {"instance_name", &instance_name, 0, NULL},
    {"admin_email", &email_null, 0, NULL},
    {"fips_required", &boolean, 0, NULL},
    {"allow_classic_fallback", &boolean, 0,
     "false refuses classic networks (409 while any exists)"},
    {"require_2fa", &boolean, 0,
     "true: every admin needs a second factor; one without is let only enrol (409 unless the "
     "caller has one)"},
};
static const struct api_schema settings_update_in = {
    .name = "SettingsUpdate", .type = AT_OBJECT, .min_props = 1, NPROPS(settings_update_props)};


/* ---- agents and policies (docs/AGENTS.md) -------------------------------------------------
 * A policy's semantic rules (required tunnel fields, addresses, traffic selectors, key lengths,
 * algorithms, lifetimes, GCM with IKEv2 ...) are checked together and answered as one 422
 * listing every problem by field; the schemas below state types and sizes (400). */

static const struct api_schema selector = {
    .type = AT_STRING, .format = &api_f_text, .min_len = 1, .max_len = 64,
    .description = "a peer id (UUID) or a tag (A-Z a-z 0-9 . _ -)", .example_json = "\"branch\""};
static const struct api_schema selectors = {.type = AT_ARRAY, .items = &selector,
					    .max_items = 64};
static const struct api_schema host = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
				       .max_len = 253};
static const struct api_schema host_list = {
    .type = AT_ARRAY, .items = &host, .max_items = 16,
    .description = "addresses, host names or %any (422 otherwise)"};
static const struct api_schema ts = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
				     .max_len = 64};
static const struct api_schema ts_list = {
    .type = AT_ARRAY, .items = &ts, .max_items = 64,
    .description = "traffic selectors: subnets (no host bits) or addresses; at least one (422)"};
static const struct api_schema proposal = {.type = AT_STRING, .format = &api_f_text,
					   .min_len = 1, .max_len = 256};
static const struct api_schema proposal_list = {
    .type = AT_ARRAY, .items = &proposal, .max_items = 16,
    .description = "strongSwan proposal keywords joined by '-' (aes256gcm16-prfsha256-x25519); "
		   "unknown algorithms, AEAD without IKEv2, an IKE proposal without a key "
		   "exchange or PRF: 422"};
static const char *const tunnel_types[] = {"ipsec", "wireguard", NULL};
static const struct api_schema tunnel_type = {.type = AT_STRING, .enumv = tunnel_types,
					      .default_json = "\"ipsec\""};
static const char *const auths[] = {"psk", "pubkey", NULL};
static const struct api_schema auth_s = {.type = AT_STRING, .enumv = auths};
static const char *const ipsec_modes[] = {"tunnel", "transport", NULL};
static const struct api_schema ipsec_mode = {.type = AT_STRING, .enumv = ipsec_modes,
					     .default_json = "\"tunnel\""};
static const char *const start_actions[] = {"none", "start", "trap", NULL};
static const struct api_schema start_action = {
    .type = AT_STRING, .enumv = start_actions,
    .description = "default start (explicit tunnels); in a topology one side of each pair "
		   "starts it, the other answers"};
static const char *const dpd_actions[] = {"clear", "trap", "restart", NULL};
static const struct api_schema dpd_action = {.type = AT_STRING, .enumv = dpd_actions,
					     .default_json = "\"restart\""};
static const struct api_schema ike_version = {.type = AT_INTEGER, .int_format = "int64",
					      .description = "IKE version 1 or 2 (422 otherwise)",
					      .default_json = "2"};
static const struct api_schema lifetime = {
    .type = AT_INTEGER, .int_format = "int64",
    .description = "seconds, 300 (5 minutes) to 86400 (24 hours); 422 otherwise"};
static const struct api_schema dpd_delay = {
    .type = AT_INTEGER, .int_format = "int64",
    .description = "seconds, 0 (off) to 3600; 422 otherwise", .default_json = "30"};
static const struct api_schema psk = {
    .type = AT_STRING, .format = &api_f_password, .allow_empty = true, .max_len = 1024,
    .description = "the pre-shared key, 8 to 256 characters (422 otherwise); never shown again"};
static const struct api_schema ike_id = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
					 .max_len = 255};
static const struct api_schema cert_ref = {
    .type = AT_STRING, .format = &api_f_text, .min_len = 1, .max_len = 128,
    .description = "a certificate's file name in the node's swanctl x509 directory"};
static const struct api_schema ifname_s = {.type = AT_STRING, .format = &api_f_text,
					   .min_len = 1, .max_len = 15};
#define TUNNEL_PROPS                                                                               \
	{"name", &name64, 0, "the connection's name (required except for a topology's "          \
			     "template, whose pairs are named NAME-A-B)"},                        \
	    {"type", &tunnel_type, 0, NULL}, {"version", &ike_version, 0, NULL},                  \
	    {"local_addrs", &host_list, 0, "default %any"},                                       \
	    {"remote_addrs", &host_list, 0, "required unless start_action is none"},              \
	    {"local_ts", &ts_list, 0, NULL}, {"remote_ts", &ts_list, 0, NULL},                    \
	    {"proposals", &proposal_list, 0, "IKE proposals"},                                    \
	    {"esp_proposals", &proposal_list, 0, NULL},                                           \
	    {"ah_proposals", &proposal_list, 0, "AH instead of ESP (a warning: limited support)"},\
	    {"auth", &auth_s, 0, "required for ipsec tunnels"},                                   \
	    {"local_id", &ike_id, 0, NULL}, {"remote_id", &ike_id, 0, NULL},                      \
	    {"local_cert", &cert_ref, 0, "required with auth = pubkey"},                          \
	    {"rekey_time", &lifetime, 0, "default 3600"},                                          \
	    {"life_time", &lifetime, 0, "default rekey_time + 10%"},                               \
	    {"dpd_delay", &dpd_delay, 0, NULL}, {"dpd_action", &dpd_action, 0, NULL},             \
	    {"mode", &ipsec_mode, 0, NULL}, {"start_action", &start_action, 0, NULL},             \
	    {"encap", &boolean, 0, "force UDP encapsulation (RFC 3948)"},                         \
	    {"client_id", &uuid, 0, "wireguard: the client whose configuration the node runs"},   \
	    {"interface", &ifname_s, 0, "wireguard: the interface name"}
static const struct api_prop tunnel_in_props[] = {
    TUNNEL_PROPS,
    {"secret", &psk, 0, "auth = psk: the key (a topology without one gets a key per pair)"},
};
static const struct api_schema tunnel_in = {
    .name = "TunnelConfig", .type = AT_OBJECT, NPROPS(tunnel_in_props),
    .description = "A tunnel in swanctl.conf's terms (connections.<name> and its child), or a "
		   "SecureGuard client's WireGuard configuration (type wireguard)."};
static const struct api_schema tunnel_in_list = {.type = AT_ARRAY, .items = &tunnel_in,
						 .max_items = 64};
static const char *const topo_types[] = {"site-to-site", "hub-and-spoke", "mesh", NULL};
static const struct api_schema topo_type = {.type = AT_STRING, .enumv = topo_types};
static const struct api_prop topology_props[] = {
    {"type", &topo_type, R, NULL},
    {"left", &selectors, 0, "site-to-site: every peer here pairs with every peer of right"},
    {"right", &selectors, 0, NULL},
    {"hubs", &selectors, 0, "hub-and-spoke"},
    {"spokes", &selectors, 0, "hub-and-spoke: reach each other through the hubs"},
    {"members", &selectors, 0, "mesh: every pair, N(N-1)/2 tunnels"},
};
static const struct api_schema topology = {
    .name = "Topology", .type = AT_OBJECT, NPROPS(topology_props), .nullable = true,
    .description = "Pairs of peers, each with a tunnel made from the policy's one tunnel (the "
		   "template): addresses and traffic selectors from each peer's address and "
		   "subnets."};
static const struct api_schema priority = {.type = AT_INTEGER, .int_format = "int64",
					   .has_min = true, .min = 0, .has_max = true,
					   .max = 1000, .default_json = "100"};
static const struct api_schema pol_desc = {.type = AT_STRING, .format = &api_f_text,
					   .max_len = 256, .allow_empty = true};
#define POLICY_IN_PROPS                                                                            \
	{"name", &name64, 0, "required (422): A-Z a-z 0-9 . _ -"},                                 \
	    {"description", &pol_desc, 0, NULL}, {"enabled", &boolean, 0, "default true"},        \
	    {"priority", &priority, 0, "higher first: of two tunnels with one name, the higher "  \
				       "priority's is kept"},                                      \
	    {"applies_to", &selectors, 0, "peer ids or tags (not with a topology)"},              \
	    {"topology", &topology, 0, NULL}, {"tunnels", &tunnel_in_list, 0, NULL}
static const struct api_prop policy_create_props[] = {POLICY_IN_PROPS};
static const struct api_schema policy_create_in = {.name = "PolicyCreate", .type = AT_OBJECT,
						   NPROPS(policy_create_props)};
static const struct api_prop policy_update_props[] = {POLICY_IN_PROPS};
static const struct api_schema policy_update_in = {
    .name = "PolicyUpdate", .type = AT_OBJECT, .min_props = 1, NPROPS(policy_update_props),
    .description = "The fields given replace the stored ones; tunnels sent without a secret "
		   "keep the stored secret of the tunnel with the same name."};

static const struct api_schema tag = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
				      .max_len = 64, .example_json = "\"branch\""};
static const struct api_schema tag_list = {.type = AT_ARRAY, .items = &tag, .max_items = 32,
					   .description = "A-Z a-z 0-9 . _ - (400 otherwise)"};
static const struct api_schema hours = {.type = AT_INTEGER, .int_format = "int64",
					.has_min = true, .min = 1, .has_max = true, .max = 720,
					.default_json = "24"};
static const struct api_prop enroll_create_props[] = {
    {"name", &name64_null, 0, "a note for admins"},
    {"tags", &tag_list, 0, "tags the enrolled peer gets"},
    {"client_id", &uuid_null, 0,
     "binds the peer to this WireGuard client (a hub): the agent runs its interface"},
    {"expires_in_hours", &hours, 0, NULL},
};
static const struct api_schema enroll_create_in = {
    .name = "EnrollmentTokenCreate", .type = AT_OBJECT, NPROPS(enroll_create_props)};

static const struct api_schema enroll_token = {.type = AT_STRING, .format = &api_f_text,
					       .min_len = 1, .max_len = 64,
					       .description = "sge_... from /api/enrollment-tokens"};
static const struct api_schema peer_name = {
    .type = AT_STRING, .format = &api_f_text, .min_len = 1, .max_len = 32,
    .description = "letters, digits and '-', not starting with '-' (400 otherwise)",
    .example_json = "\"branch-1\""};
static const struct api_schema short_text = {.type = AT_STRING, .format = &api_f_text,
					     .min_len = 1, .max_len = 64, .nullable = true};
static const struct api_schema host_null = {.type = AT_STRING, .format = &api_f_text,
					    .min_len = 1, .max_len = 253, .nullable = true};
static const struct api_schema ifname_null = {.type = AT_STRING, .format = &api_f_text,
					      .min_len = 1, .max_len = 15, .nullable = true};
static const char *const backend_names[] = {"strongswan", "iked", "secureguardd", "windows",
					    "macos", NULL};
static const struct api_schema backend = {.type = AT_STRING, .enumv = backend_names};
static const struct api_schema backend_list = {.type = AT_ARRAY, .items = &backend,
					       .max_items = 8};
static const struct api_prop register_props[] = {
    {"token", &enroll_token, R, NULL},
    {"public_key", &wg_key, R, "the agent's own X25519 public key (its credential)"},
    {"name", &peer_name, R, "unique among peers"},
    {"hostname", &host_null, 0, NULL},
    {"platform", &short_text, 0, "linux, windows, macos ..."},
    {"version", &short_text, 0, "the agent's version"},
    {"interface", &ifname_null, 0, "the WireGuard interface it runs for a bound client"},
    {"address", &ip_null, 0, "where other peers reach its IKE daemon"},
    {"subnets", &cidr_list, 0, "the networks behind it (its traffic selectors)"},
    {"backends", &backend_list, 0, NULL},
};
static const struct api_schema register_in = {.name = "PeerRegister", .type = AT_OBJECT,
					      NPROPS(register_props)};
static const struct api_prop agent_auth_props[] = {
    {"public_key", &wg_key, R, "the agent's public key"},
    {"challenge", &challenge, R, "from /api/auth/client/challenge"},
    {"proof", &proof, R,
     "base64url(HMAC-SHA-384(X25519(agent_priv, server_public_key), \"secureguard agent auth "
     "v1\" || challenge || public_key || server_public_key))"},
};
static const struct api_schema agent_auth_in = {.name = "AgentAuth", .type = AT_OBJECT,
						NPROPS(agent_auth_props)};
static const struct api_prop peer_update_props[] = {
    {"name", &peer_name, 0, NULL},
    {"tags", &tag_list, 0, NULL},
    {"address", &ip_null, 0, NULL},
    {"subnets", &cidr_list, 0, NULL},
    {"client_id", &uuid_null, 0, "bind to a WireGuard client, or null"},
    {"interface", &ifname_null, 0, NULL},
};
static const struct api_schema peer_update_in = {.name = "PeerUpdate", .type = AT_OBJECT,
						 .min_props = 1, NPROPS(peer_update_props)};

static const char *const agent_states[] = {"ok", "degraded", "failed", "syncing", NULL};
static const struct api_schema agent_state = {.type = AT_STRING, .enumv = agent_states};
static const char *const tunnel_states[] = {"up", "down", "connecting", "failed", NULL};
static const struct api_schema tunnel_state = {.type = AT_STRING, .enumv = tunnel_states};
static const struct api_schema revision = {.type = AT_STRING, .format = &api_f_text,
					   .min_len = 1, .max_len = 128, .nullable = true};
static const struct api_schema restarts = {.type = AT_INTEGER, .int_format = "int64",
					   .has_min = true, .min = 0, .has_max = true,
					   .max = 1000000};
static const struct api_schema text256_null = {.type = AT_STRING, .format = &api_f_text,
					       .max_len = 256, .allow_empty = true,
					       .nullable = true};
static const struct api_schema name_long = {.type = AT_STRING, .format = &api_f_text,
					    .min_len = 1, .max_len = 200};
static const struct api_prop tunnel_report_props[] = {
    {"name", &name_long, R, NULL},
    {"type", &tunnel_type, 0, NULL},
    {"policy_id", &uuid_null, 0, NULL},
    {"backend", &backend, 0, NULL},
    {"state", &tunnel_state, R, NULL},
    {"reason", &text256_null, 0, "why it is down or failed (key mismatch, peer unreachable)"},
    {"bytes_in", &count, 0, NULL},
    {"bytes_out", &count, 0, NULL},
    {"packets_in", &count, 0, NULL},
    {"packets_out", &count, 0, NULL},
    {"rekeys", &count, 0, NULL},
    {"restarts", &restarts, 0, "watchdog restarts"},
    {"established_at", &count_null, 0, "unix seconds"},
};
static const struct api_schema tunnel_report = {.name = "TunnelReport", .type = AT_OBJECT,
						NPROPS(tunnel_report_props)};
static const struct api_schema tunnel_report_list = {.type = AT_ARRAY, .items = &tunnel_report,
						     .max_items = 1024};
static const struct api_schema endpoint_seen = {.type = AT_STRING, .format = &api_f_text,
						.min_len = 1, .max_len = 64, .nullable = true};
static const char *const sessions[] = {"classic", "fips", "none", NULL};
static const struct api_schema session_mode = {.type = AT_STRING, .enumv = sessions,
					       .nullable = true};
static const struct api_prop wg_peer_report_props[] = {
    {"public_key", &wg_key, R, "as the interface lists it"},
    {"fips_public_key", &fips_key_null, 0, NULL},
    {"endpoint", &endpoint_seen, 0, NULL},
    {"last_handshake", &count, 0, "unix seconds, 0 = never"},
    {"rx_bytes", &count, 0, NULL},
    {"tx_bytes", &count, 0, NULL},
    {"crypto_mode", &session_mode, 0, "the current session's suite"},
};
static const struct api_schema wg_peer_report = {.name = "WireGuardPeerReport",
						 .type = AT_OBJECT,
						 NPROPS(wg_peer_report_props)};
static const struct api_schema wg_peer_report_list = {.type = AT_ARRAY, .items = &wg_peer_report,
						      .max_items = 16384};
static const struct api_prop wg_report_props[] = {
    {"interface", &ifname_s, R, NULL},
    {"client_id", &uuid_null, 0, NULL},
    {"peers", &wg_peer_report_list, 0, NULL},
};
static const struct api_schema wg_report = {.name = "WireGuardReport", .type = AT_OBJECT,
					    NPROPS(wg_report_props)};
static const struct api_schema wg_report_list = {.type = AT_ARRAY, .items = &wg_report,
						 .max_items = 16};
static const struct api_prop agent_error_props[] = {
    {"policy_id", &uuid_null, 0, NULL},
    {"tunnel", &text256_null, 0, NULL},
    {"detail", &text256_null, R, NULL},
};
static const struct api_schema agent_error = {.name = "AgentError", .type = AT_OBJECT,
					      NPROPS(agent_error_props)};
static const struct api_schema agent_error_list = {.type = AT_ARRAY, .items = &agent_error,
						   .max_items = 64};
#define API_GW_REPORT
#include "server/api_gateway.inc"
#undef API_GW_REPORT
static const struct api_schema cert_ref_list = {
    .type = AT_ARRAY,
    .items = &cert_ref,
    .max_items = 256,
    .description = "the certificate files of its swanctl x509 directory that have their key in "
		   "private/: what a pubkey tunnel's local_cert may name on this node"};
static const struct api_schema cert_subject = {.type = AT_STRING, .format = &api_f_text,
					       .min_len = 1, .max_len = 128};
static const struct api_schema cert_time = {.type = AT_INTEGER, .int_format = "int64",
					    .has_min = true, .min = 0, .has_max = true,
					    .max = JS_MAX_SAFE,
					    .description = "Unix time, seconds"};
static const struct api_prop cert_exp_props[] = {
    {"name", &cert_ref, R, NULL},
    {"not_after", &cert_time, R, NULL},
    {"subject", &cert_subject, 0, "its CN, or its whole subject"},
};
static const struct api_schema cert_exp = {.name = "CertificateExpiry", .type = AT_OBJECT,
					   NPROPS(cert_exp_props)};
static const struct api_schema cert_exp_list = {
    .type = AT_ARRAY,
    .items = &cert_exp,
    .max_items = 256,
    .description = "the validity of the certificates that are PEM files (GET /api/certificates "
		   "shows them)"};
static const struct api_prop status_props[] = {
    {"state", &agent_state, R, NULL},
    {"revision", &revision, 0, "the configuration revision it runs"},
    {"version", &short_text, 0, NULL},
    {"platform", &short_text, 0, NULL},
    {"backends", &backend_list, 0, NULL},
    {"tunnels", &tunnel_report_list, 0, NULL},
    {"wireguard", &wg_report_list, 0, NULL},
    {"errors", &agent_error_list, 0, "what failed to apply (and was rolled back)"},
    {"certificates", &cert_ref_list, 0, "checked against policies' local_cert"},
    {"certificate_expiry", &cert_exp_list, 0, NULL},
    {"gateway", &gw_report, 0, "a gateway's health and counters (GatewayReport)"},
};
static const struct api_schema status_in = {.name = "PeerStatus", .type = AT_OBJECT,
					    NPROPS(status_props)};

/* ---- outputs ------------------------------------------------------------------------------- */

static const char *const bearer[] = {"Bearer", NULL};
static const struct api_schema bearer_s = {.type = AT_STRING, .enumv = bearer};
static const struct api_prop token_user_props[] = {
    {"id", &uuid, R, NULL}, {"email", &str, R, NULL}, {"role", &role, R, NULL}};
static const struct api_schema token_user = {.type = AT_OBJECT, NPROPS(token_user_props)};
static const struct api_prop tokens_props[] = {
    {"access_token", &str, R, "HS384 JWT, short-lived"},
    {"token_type", &bearer_s, R, NULL},
    {"expires_in", &int64, R, "seconds"},
    {"refresh_token", &str, 0, "sgr_...; single use, rotates (absent when it went into the "
			      "sg_refresh cookie)"},
    {"user", &token_user, R, NULL},
};
static const struct api_schema tokens_out = {.name = "Tokens", .type = AT_OBJECT,
					     NPROPS(tokens_props)};
static const struct api_schema mfa_required = {.type = AT_BOOLEAN,
					       .description = "always true"};
static const char *const mfa_method_names[] = {"totp", "passkey", NULL};
static const struct api_schema mfa_method = {.type = AT_STRING, .enumv = mfa_method_names};
static const struct api_schema mfa_methods = {.type = AT_ARRAY, .items = &mfa_method};
static const struct api_prop mfa_challenge_props[] = {
    {"mfa_required", &mfa_required, R, NULL},
    {"mfa_token", &str, R, "sgm_...: send it with a code to POST /api/auth/login/mfa"},
    {"expires_in", &int64, R, "seconds"},
    {"methods", &mfa_methods, R,
     "the account's second factors: totp (a code at POST /api/auth/login/mfa; recovery codes "
     "too), passkey (POST /api/auth/login/passkey/options with the mfa_token)"},
};
static const struct api_schema mfa_challenge_out = {
    .name = "MfaChallenge", .type = AT_OBJECT,
    .description = "The password was right; the account has a second factor.",
    NPROPS(mfa_challenge_props)};
static const struct api_schema *const login_results[] = {&tokens_out, &mfa_challenge_out, NULL};
static const struct api_schema login_out = {
    .name = "LoginResult", .type = AT_ANY, .one_of = login_results,
    .description = "Tokens, or (the account has a second factor) a challenge."};
static const char *const sha1_only[] = {"SHA1", NULL};
static const struct api_schema totp_alg = {.type = AT_STRING, .enumv = sha1_only};
static const struct api_prop totp_start_props[] = {
    {"secret", &str, R, "base32 (RFC 4648), 160 bits: for typing into the app"},
    {"otpauth_uri", &str, R, "otpauth://totp/...: what the QR code (?format=qr) holds"},
    {"algorithm", &totp_alg, R, NULL},
    {"digits", &int64, R, NULL},
    {"period", &int64, R, "seconds per code"},
    {"expires_in", &int64, R, "seconds left to confirm this secret"},
};
static const struct api_schema totp_start_out = {.name = "TotpEnrolment", .type = AT_OBJECT,
						 NPROPS(totp_start_props)};
static const struct api_schema recovery_list = {.type = AT_ARRAY, .items = &str};
static const struct api_prop recovery_props[] = {
    {"recovery_codes", &recovery_list, R,
     "ten single-use codes, shown once: each logs in once instead of a TOTP code"}};
static const struct api_schema recovery_out = {.name = "RecoveryCodes", .type = AT_OBJECT,
					       NPROPS(recovery_props)};
static const struct api_prop revoked_props[] = {
    {"revoked", &boolean, R, "whether a refresh token was revoked"}};
static const struct api_schema logout_out = {.name = "LogoutResult", .type = AT_OBJECT,
					     NPROPS(revoked_props)};
static const struct api_prop challenge_props[] = {
    {"challenge", &str, R, "base64url of 32 random bytes, single use, valid 60 s"},
    {"server_public_key", &str, R, "base64 X25519 key"},
    {"expires_in", &int64, R, "seconds"},
};
static const struct api_schema challenge_out = {.name = "Challenge", .type = AT_OBJECT,
						NPROPS(challenge_props)};
static const struct api_prop session_props[] = {
    {"session_token", &str, R, "sgs_..."},
    {"token_type", &bearer_s, R, NULL},
    {"expires_in", &int64, R, "seconds"},
    {"client_id", &uuid, R, NULL},
};
static const struct api_schema session_out = {.name = "ClientSession", .type = AT_OBJECT,
					      NPROPS(session_props)};
static const char *const kinds[] = {"user", "api_key", "client", "agent", NULL};
static const struct api_schema kind = {.type = AT_STRING, .enumv = kinds};
static const char *const me_roles[] = {"super_admin", "admin", "viewer", "client", "agent",
				       NULL};
static const struct api_schema me_role = {.type = AT_STRING, .enumv = me_roles};
static const struct api_prop me_props[] = {
    {"kind", &kind, R, NULL},
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"role", &me_role, R, NULL},
    {"needs_2fa", &boolean, R,
     "the instance requires a second factor and this user has none: only enrolment, getMe "
     "and logout answer until it is on"},
};
static const struct api_schema me_out = {.name = "Me", .type = AT_OBJECT, NPROPS(me_props)};

static const struct api_prop user_props[] = {
    {"id", &uuid, R, NULL},
    {"email", &str, R, NULL},
    {"role", &role, R, NULL},
    {"enabled", &boolean, R, NULL},
    {"failed_logins", &int64, R, NULL},
    {"locked_until", &unix_s_null, R, NULL},
    {"last_login", &unix_s_null, R, NULL},
    {"created_at", &unix_s, R, NULL},
    {"totp_enabled", &boolean, R, "a second factor (TOTP) is on"},
    {"passkeys", &count, R, "passkeys registered (each is a second factor too)"},
};
static const struct api_schema user_out = {.name = "User", .type = AT_OBJECT,
					   NPROPS(user_props)};

static const char *const pk_algs[] = {"ES256", "ES384", NULL};
static const struct api_schema pk_alg = {.type = AT_STRING, .enumv = pk_algs};
static const struct api_prop passkey_props[] = {
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"algorithm", &pk_alg, R, "COSE -7 (ES256, P-256) or -35 (ES384, P-384)"},
    {"credential_id", &str, R, "base64url"},
    {"aaguid", &str, R, "the authenticator model (hex; zeros when not told)"},
    {"backup_eligible", &boolean, R, "a synced passkey (flag BE at registration)"},
    {"backed_up", &boolean, R, "flag BS at its last use"},
    {"user_verified", &boolean, R, "the authenticator verified the user at registration"},
    {"sign_count", &count, R, "its signature counter at the last use (0: it keeps none)"},
    {"created_at", &unix_s, R, NULL},
    {"last_used_at", &unix_s_null, R, NULL},
};
static const struct api_schema passkey_out = {.name = "Passkey", .type = AT_OBJECT,
					      NPROPS(passkey_props)};
static const struct api_prop cred_desc_props[] = {
    {"type", &cred_type, R, NULL},
    {"id", &str, R, "base64url credential id"},
    {"transports", &transports, 0, NULL},
};
static const struct api_schema cred_desc = {.type = AT_OBJECT, NPROPS(cred_desc_props)};
static const struct api_schema cred_descs = {.type = AT_ARRAY, .items = &cred_desc};
static const struct api_prop rp_props[] = {
    {"id", &str, R, "the rpId: the host of the server's --public-url"},
    {"name", &str, R, "the instance name"}};
static const struct api_schema rp_s = {.type = AT_OBJECT, NPROPS(rp_props)};
static const struct api_prop pk_user_props[] = {
    {"id", &str, R, "base64url of the account's id (the user handle)"},
    {"name", &str, R, NULL},
    {"displayName", &str, R, NULL}};
static const struct api_schema pk_user = {.type = AT_OBJECT, NPROPS(pk_user_props)};
static const struct api_prop pk_param_props[] = {{"type", &cred_type, R, NULL},
						 {"alg", &int64, R, "-7 ES256, -35 ES384"}};
static const struct api_schema pk_param = {.type = AT_OBJECT, NPROPS(pk_param_props)};
static const struct api_schema pk_params = {.type = AT_ARRAY, .items = &pk_param};
static const struct api_prop pk_sel_props[] = {{"residentKey", &str, R, "preferred"},
					       {"requireResidentKey", &boolean, R, NULL},
					       {"userVerification", &str, R, "preferred"}};
static const struct api_schema pk_sel = {.type = AT_OBJECT, NPROPS(pk_sel_props)};
static const struct api_prop pk_create_props[] = {
    {"challenge", &str, R, "base64url of 32 random bytes: one registration, 5 minutes"},
    {"rp", &rp_s, R, NULL},
    {"user", &pk_user, R, NULL},
    {"pubKeyCredParams", &pk_params, R, NULL},
    {"timeout", &int64, R, "milliseconds"},
    {"excludeCredentials", &cred_descs, R, "the account's passkeys (not registered twice)"},
    {"authenticatorSelection", &pk_sel, R, NULL},
    {"attestation", &str, R, "none"},
};
static const struct api_schema pk_create_out = {
    .name = "PasskeyCreationOptions", .type = AT_OBJECT, NPROPS(pk_create_props),
    .description = "PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3 section 5.4): "
		   "decode the base64url values and pass it to navigator.credentials.create()"};
static const struct api_prop pk_request_props[] = {
    {"challenge", &str, R, "base64url of 32 random bytes: one login, 5 minutes"},
    {"rpId", &str, R, NULL},
    {"timeout", &int64, R, "milliseconds"},
    {"allowCredentials", &cred_descs, R,
     "with an mfa_token, that account's passkeys; without, empty (any discoverable passkey)"},
    {"userVerification", &str, R, "required without a password, else preferred"},
};
static const struct api_schema pk_request_out = {
    .name = "PasskeyRequestOptions", .type = AT_OBJECT, NPROPS(pk_request_props),
    .description = "PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3 section 5.5): for "
		   "navigator.credentials.get()"};

static const struct api_prop apikey_props[] = {
    {"id", &uuid, R, NULL},
    {"user_id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"prefix", &str, R, "the first characters of the key, to recognise it"},
    {"role", &role, R, NULL},
    {"expires_at", &unix_s_null, R, NULL},
    {"last_used", &unix_s_null, R, "recorded at most once a minute"},
    {"revoked", &boolean, R, NULL},
    {"created_at", &unix_s, R, NULL},
};
static const struct api_schema apikey_out = {.name = "ApiKey", .type = AT_OBJECT,
					     NPROPS(apikey_props)};
static const struct api_prop apikey_created_props[] = {
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"role", &role, R, NULL},
    {"prefix", &str, R, NULL},
    {"key", &str, R, "sgk_...; shown once"},
    {"expires_at", &unix_s_null, R, NULL},
};
static const struct api_schema apikey_created_out = {
    .name = "ApiKeyCreated", .type = AT_OBJECT, NPROPS(apikey_created_props)};

static const struct api_prop net_props[] = {
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"subnet4", &str_null, R, NULL},
    {"subnet6", &str_null, R, NULL},
    {"dns_servers", &str_list, R, NULL},
    {"fips_required", &boolean, R, NULL},
    {"mtu", &int64_null, R, NULL},
    {"created_at", &unix_s, R, NULL},
    {"updated_at", &unix_s, R, NULL},
    {"mfa_required", &boolean, R, "clients are peers only during their owner's VPN session"},
    {"mfa_session_hours", &int64, R, NULL},
    {"client_count", &int64, R, NULL},
};
static const struct api_schema net_out = {.name = "Network", .type = AT_OBJECT,
					  NPROPS(net_props)};

static const struct api_prop peer_props[] = {
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"public_key_classic", &str_null, R, NULL},
    {"public_key_fips", &str_null, R, NULL},
    {"assigned_ip4", &str_null, R, NULL},
    {"assigned_ip6", &str_null, R, NULL},
    {"allowed_ips", &str_list, R, NULL},
    {"is_relay", &boolean, R, NULL},
    {"endpoint", &str_null, R, NULL},
    {"listen_port", &int64_null, R, NULL},
    {"enabled", &boolean, R, NULL},
    {"last_handshake", &unix_s_null, R, NULL},
};
static const struct api_schema peer_out = {.name = "Peer", .type = AT_OBJECT,
					   NPROPS(peer_props)};

static const struct api_prop client_props[] = {
    {"id", &uuid, R, NULL},
    {"network_id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"description", &str, R, NULL},
    {"public_key_classic", &str_null, R, NULL},
    {"public_key_fips", &str_null, R, NULL},
    {"assigned_ip4", &str_null, R, NULL},
    {"assigned_ip6", &str_null, R, NULL},
    {"allowed_ips", &str_list, R, NULL},
    {"persistent_keepalive", &int64, R, NULL},
    {"is_relay", &boolean, R, NULL},
    {"endpoint", &str_null, R, NULL},
    {"listen_port", &int64_null, R, NULL},
    {"enabled", &boolean, R, NULL},
    {"temp_access_id", &uuid_null, R, NULL},
    {"expires_at", &unix_s_null, R, NULL},
    {"last_handshake", &unix_s_null, R, NULL},
    {"created_at", &unix_s, R, NULL},
    {"updated_at", &unix_s, R, NULL},
    {"server_generated_keys", &boolean, R, "the server holds the private keys (in configs)"},
    {"online", &boolean, R, "a hub's agent saw a handshake within the last 180 s"},
    {"bytes_sent", &int64, R, "sent by the client, as its hub's agent last reported"},
    {"bytes_received", &int64, R, NULL},
    {"owner_id", &uuid_null, R, "the user whose VPN session gates it (mfa_required networks)"},
};
static const struct api_schema client_out = {.name = "Client", .type = AT_OBJECT,
					     NPROPS(client_props)};

static const struct api_prop vpn_opened_props[] = {
    {"id", &uuid, R, NULL},
    {"session_token", &str, R, "sgv_...; shown once: ends the session (POST "
			       "/api/vpn-sessions/end)"},
    {"client_id", &uuid, R, NULL},
    {"client_name", &str, R, NULL},
    {"network_id", &uuid, R, NULL},
    {"user_id", &uuid, R, NULL},
    {"expires_at", &unix_s, R, NULL},
    {"expires_in", &int64, R, "seconds"},
    {"tls_session_token", &str_null, R,
     "an ES384 JWT for the TLS transport's listeners with RequireSessionToken (docs/TLS.md, "
     "\"Session tokens\"): the client's WireGuard key, this session, valid until expires_at; "
     "verified with GET /api/tls-session-key. null when the client has no classic key"},
};
static const struct api_schema vpn_opened_out = {.name = "VpnSessionOpened", .type = AT_OBJECT,
						 NPROPS(vpn_opened_props)};
static const struct api_prop tls_jwk_props[] = {
    {"kty", &str, R, "EC"}, {"crv", &str, R, "P-384"}, {"x", &str, R, "base64url"},
    {"y", &str, R, "base64url"}, {"use", &str, R, "sig"}, {"alg", &str, R, "ES384"},
    {"kid", &str, R, "RFC 7638 thumbprint"}};
static const struct api_schema tls_jwk_out = {.name = "TlsSessionJwk", .type = AT_OBJECT,
					      NPROPS(tls_jwk_props)};
static const struct api_schema pem_text = {.type = AT_STRING, .format = &api_f_pem};
static const struct api_prop tls_key_props[] = {
    {"alg", &str, R, "ES384"},
    {"kid", &str, R, "the key id in the tokens' header"},
    {"jwk", &tls_jwk_out, R, NULL},
    {"pem", &pem_text, R, "the same key as a PEM SubjectPublicKeyInfo: a daemon's TlsSessionKey file"}};
static const struct api_schema tls_key_out = {.name = "TlsSessionKey", .type = AT_OBJECT,
					      NPROPS(tls_key_props)};
static const struct api_prop vpn_tls_props[] = {
    {"tls_session_token", &str, R, "as in POST /api/vpn-sessions's answer"},
    {"expires_at", &unix_s, R, "the session's end, the token's exp"}};
static const struct api_schema vpn_tls_out = {.name = "VpnSessionTlsToken", .type = AT_OBJECT,
					      NPROPS(vpn_tls_props)};
static const char *const vpn_reasons[] = {"ended_by_user", "revoked", "expired", "replaced",
					  "owner_changed", "credentials_changed", NULL};
static const struct api_schema vpn_reason = {.type = AT_STRING, .enumv = vpn_reasons,
					     .nullable = true};
static const struct api_prop vpn_props[] = {
    {"id", &uuid, R, NULL},
    {"client_id", &uuid, R, NULL},
    {"client_name", &str_null, R, NULL},
    {"network_id", &uuid_null, R, NULL},
    {"user_id", &uuid, R, NULL},
    {"user_email", &str_null, R, NULL},
    {"source_ip", &str_null, R, "where it was opened from"},
    {"created_at", &unix_s, R, NULL},
    {"expires_at", &unix_s, R, NULL},
    {"ended_at", &unix_s_null, R, NULL},
    {"end_reason", &vpn_reason, R, NULL},
    {"ended_by", &str_null, R, "the user or API key that ended it"},
    {"active", &boolean, R, "open now: the client is a peer of its hubs"},
};
static const struct api_schema vpn_out = {.name = "VpnSession", .type = AT_OBJECT,
					  NPROPS(vpn_props)};

#define TEMP_PROPS                                                                                 \
	{"id", &uuid, R, NULL}, {"network_id", &uuid, R, NULL},                                    \
	    {"created_by", &uuid_null, R, NULL}, {"name", &str_null, R, NULL},                     \
	    {"allowed_ips", &str_list, R, NULL}, {"expires_at", &unix_s, R, NULL},                 \
	    {"max_uses", &int64, R, "0 = unlimited"}, {"current_uses", &int64, R, NULL},          \
	    {"revoked", &boolean, R, NULL}, {"created_at", &unix_s, R, NULL}
static const struct api_prop temp_props[] = {TEMP_PROPS};
static const struct api_schema temp_out = {.name = "TempAccess", .type = AT_OBJECT,
					   NPROPS(temp_props)};
static const struct api_prop temp_created_props[] = {
    TEMP_PROPS,
    {"token", &str, R, "sgt_...; shown once"},
    {"url", &str, R, "the link to hand out: --public-url (or the bound address) and the token"},
    {"qr_png_base64", &str, R, "PNG of a QR code of url"},
    {"page_url", &str, 0,
     "the admin console's guest page for this grant (when the server serves the console): it "
     "checks the link, then redeems it at the guest's request and shows the config and its QR "
     "code; the token is in the fragment, which browsers do not send"},
    {"page_qr_png_base64", &str, 0, "PNG of a QR code of page_url"},
};
static const struct api_schema temp_created_out = {
    .name = "TempAccessCreated", .type = AT_OBJECT, NPROPS(temp_created_props)};

static const struct api_prop audit_props[] = {
    {"id", &int64, R, NULL},
    {"ts", &int64, R, "Unix time, milliseconds"},
    {"event_type", &str, R, NULL},
    {"actor_id", &str_null, R, NULL},
    {"actor_type", &str_null, R, NULL},
    {"actor_name", &str_null, R, NULL},
    {"resource_type", &str_null, R, NULL},
    {"resource_id", &str_null, R, NULL},
    {"resource_name", &str_null, R, NULL},
    {"action", &str_null, R, NULL},
    {"details", &str_null, R, "JSON text"},
    {"source_ip", &str_null, R, NULL},
    {"user_agent", &str_null, R, NULL},
    {"prev_hash", &str, R, NULL},
    {"hash", &str, R, NULL},
};
static const struct api_schema audit_out = {.name = "AuditEvent", .type = AT_OBJECT,
					    NPROPS(audit_props)};
static const struct api_schema audit_list = {.type = AT_ARRAY, .items = &audit_out};

static const struct api_prop conn_props[] = {
    {"id", &int64, R, NULL},
    {"client_id", &uuid_null, R, NULL},
    {"ts", &unix_s, R, NULL},
    {"event", &str, R, NULL},
    {"source_ip", &str_null, R, NULL},
    {"source_port", &int64_null, R, NULL},
    {"crypto_mode", &str_null, R, NULL},
    {"bytes_sent", &int64, R, NULL},
    {"bytes_received", &int64, R, NULL},
    {"packets_sent", &int64, R, NULL},
    {"packets_received", &int64, R, NULL},
    {"session_duration_ms", &int64_null, R, NULL},
    {"disconnect_reason", &str_null, R, NULL},
};
static const struct api_schema conn_out = {.name = "Connection", .type = AT_OBJECT,
					   NPROPS(conn_props)};
static const char *const recorded[] = {"recorded", NULL};
static const struct api_schema recorded_s = {.type = AT_STRING, .enumv = recorded};
static const struct api_prop conn_recorded_props[] = {{"status", &recorded_s, R, NULL},
						      {"client_id", &uuid, R, NULL}};
static const struct api_schema conn_recorded_out = {
    .name = "ConnectionRecorded", .type = AT_OBJECT, NPROPS(conn_recorded_props)};

static const struct api_prop settings_props[] = {
    {"instance_name", &str, R, NULL},
    {"admin_email", &str_null, R, NULL},
    {"fips_required", &boolean, R, NULL},
    {"allow_classic_fallback", &boolean, R, NULL},
    {"require_2fa", &boolean, R, NULL},
    {"created_at", &unix_s, R, NULL},
    {"updated_at", &unix_s, R, NULL},
};
static const struct api_schema settings_out = {.name = "Settings", .type = AT_OBJECT,
					       NPROPS(settings_props)};

static const char *const ok[] = {"ok", NULL};
static const struct api_schema ok_s = {.type = AT_STRING, .enumv = ok};
static const char *const editions[] = {"free", "licensed", NULL};
static const struct api_schema edition_s = {.type = AT_STRING, .enumv = editions};
static const char *const lic_states[] = {"none", "valid", "not_yet_valid", "grace", "expired",
					 NULL};
static const struct api_schema lic_state_s = {.type = AT_STRING, .enumv = lic_states};
static const struct api_prop license_props[] = {
    {"edition", &edition_s, R, "licensed while the license is valid or in its grace period"},
    {"status", &lic_state_s, R, NULL},
    {"client_limit", &count, R, "clients this instance may have (the free edition: 250)"},
    {"expires_at", &unix_s, 0, "the license's expiry"},
    {"grace_ends_at", &unix_s, 0, "14 days after the expiry: the free edition from then"},
    {"warning", &str, 0, "what to do, while the license is in its grace period, expired or "
			 "not yet valid"},
};
static const struct api_schema license_out = {
    .name = "LicenseState", .type = AT_OBJECT, NPROPS(license_props),
    .description = "The instance's license (docs/SERVER.md, \"Licenses\"); no customer data."};
static const struct api_prop health_props[] = {{"status", &ok_s, R, NULL},
					       {"version", &str, R, NULL},
					       {"license", &license_out, R, NULL}};
static const struct api_schema health_out = {.name = "Health", .type = AT_OBJECT,
					     NPROPS(health_props)};
static const char *const ready_v[] = {"ready", NULL};
static const struct api_schema ready_s = {.type = AT_STRING, .enumv = ready_v};
static const char *const engines[] = {"sqlite", "postgresql", NULL};
static const struct api_schema engine_s = {.type = AT_STRING, .enumv = engines};
static const char *const redis_states[] = {"up", "none", NULL};
static const struct api_schema redis_state_s = {.type = AT_STRING, .enumv = redis_states};
static const struct api_prop ready_props[] = {
    {"status", &ready_s, R, NULL},
    {"database", &engine_s, R, NULL},
    {"schema_version", &count, R, NULL},
    {"redis", &redis_state_s, R, "up: --redis answers a PING; none: no --redis"}};
static const struct api_schema ready_out = {.name = "Ready", .type = AT_OBJECT,
					    NPROPS(ready_props)};
static const struct api_schema redeemed_conf = {.type = AT_STRING, .format = &api_f_wg_config};
static const struct api_prop redeemed_props[] = {
    {"config", &redeemed_conf, R, "the config file, as format=conf answers it"},
    {"qr_png_base64", &str_null, R, "PNG of a QR code of config; null when it is too long for one"},
    {"expires_at", &unix_s, R, "when the grant, and so this client, expires"},
};
static const struct api_schema redeemed_out = {.name = "TempAccessRedeemed", .type = AT_OBJECT,
					       NPROPS(redeemed_props)};
static const struct api_prop stats_props[] = {
    {"ts", &unix_s, R, NULL},
    {"clients", &count, R, NULL},
    {"clients_enabled", &count, R, NULL},
    {"clients_online", &count, R, "enabled clients whose hub saw a recent handshake"},
    {"bytes_received", &count, R, "all clients' counters as their hubs report them"},
    {"bytes_sent", &count, R, NULL},
    {"networks", &count, R, NULL},
    {"peers", &count, R, "managed nodes (agents), not revoked"},
    {"peers_online", &count, R, NULL},
    {"gateways", &count, R, NULL},
    {"gateways_online", &count, R, NULL},
    {"audit_head", &count, R, "the newest audit event's id"},
};
static const struct api_schema stats_sample = {.name = "StatsSample", .type = AT_OBJECT,
					       NPROPS(stats_props)};
static const struct api_schema stats_list = {.type = AT_ARRAY, .items = &stats_sample};
static const struct api_prop stats_out_props[] = {
    {"current", &stats_sample, R, NULL},
    {"history", &stats_list, R,
     "samples of the last hour, oldest first, taken by this server every 10 seconds (empty "
     "after a restart)"},
    {"database", &str, R, "ok, or why not"},
    {"version", &str, R, NULL},
};
static const struct api_schema stats_out = {.name = "Stats", .type = AT_OBJECT,
					    NPROPS(stats_out_props)};
static const struct api_prop verify_props[] = {
    {"intact", &boolean, R, NULL},
    {"rows", &count, R, "rows checked"},
    {"bad_id", &int64_null, R, "the first row that does not verify"},
    {"detail", &str, R, NULL},
    {"checked_at", &unix_s, R, "when the chain was last checked (it is checked again when it "
			       "grew)"},
};
static const struct api_schema verify_out = {.name = "AuditVerification", .type = AT_OBJECT,
					     NPROPS(verify_props)};
static const char *const cert_kinds[] = {"server_tls", "resource_tls", "node_cert", "signing_key",
					 NULL};
static const char *const cert_states[] = {"ok",	      "expiring",  "expired",
					  "unreadable", "no_expiry", "unknown", NULL};
static const struct api_schema cert_kind = {.type = AT_STRING, .enumv = cert_kinds};
static const struct api_schema cert_state = {.type = AT_STRING, .enumv = cert_states};
static const struct api_prop cert_props[] = {
    {"kind", &cert_kind, R,
     "server_tls: this server's HTTPS certificate (--tls-cert); resource_tls: a gateway "
     "resource's own certificate (tls.cert, a file on the gateway's host); node_cert: a "
     "certificate in a managed node's swanctl x509 directory, as its agent last reported it; "
     "signing_key: the keys derived from the master key "
     "file (access tokens, the OpenID provider's ID tokens)"},
    {"name", &str, R,
     "what it belongs to: the file, the resource's name, NODE: FILE, the key"},
    {"resource_id", &uuid_null, R, "resource_tls: the resource"},
    {"peer_id", &uuid_null, R, "node_cert: the managed node"},
    {"subject", &str_null, R, "the certificate's CN (or its whole subject)"},
    {"not_before", &unix_s_null, R, NULL},
    {"not_after", &unix_s_null, R, "null: no expiry (a key) or unreadable"},
    {"created_at", &unix_s_null, R, "signing_key: when the master key file was written"},
    {"state", &cert_state, R,
     "expiring: within warn_days; unreadable: detail says why; no_expiry: a key that does not "
     "expire (its age is what to watch); unknown: the server cannot read it (detail says "
     "where it is)"},
    {"detail", &str, R, NULL},
};
static const struct api_schema cert_info = {.name = "CertificateStatus", .type = AT_OBJECT,
					    NPROPS(cert_props)};
static const struct api_schema cert_list = {.type = AT_ARRAY, .items = &cert_info};
static const struct api_prop certs_out_props[] = {
    {"items", &cert_list, R,
     "this server's certificate, the resources' (by name), the nodes' (by node and file), the "
     "keys"},
    {"warn_days", &count, R, "a certificate expiring within this many days is expiring"},
    {"not_tracked", &str_list, R,
     "certificates that exist but that this server cannot see, and why"},
};
static const struct api_schema certs_out = {.name = "CertificateStatusList", .type = AT_OBJECT,
					    NPROPS(certs_out_props)};
static const struct api_schema any_object = {.type = AT_OBJECT, .open = true,
					     .description = "the OpenAPI 3 document"};
static const struct api_schema text = {.type = AT_STRING};
static const struct api_schema png = {.type = AT_STRING, .description = "PNG image",
				      .format = &api_f_binary};


/* ---- agents and policies: outputs ---------------------------------------------------------- */

static const struct api_prop tunnel_out_props[] = {
    TUNNEL_PROPS,
    {"has_secret", &boolean, R, "a pre-shared key is stored (never shown)"},
};
static const struct api_schema tunnel_out = {.name = "Tunnel", .type = AT_OBJECT,
					     NPROPS(tunnel_out_props)};
static const struct api_schema tunnel_out_list = {.type = AT_ARRAY, .items = &tunnel_out};
static const struct api_prop policy_props[] = {
    {"id", &uuid, R, NULL},
    {"name", &str, R, NULL},
    {"description", &str, R, NULL},
    {"version", &int64, R, "1 at creation, one more at every change"},
    {"enabled", &boolean, R, NULL},
    {"priority", &int64, R, NULL},
    {"applies_to", &str_list, R, NULL},
    {"topology", &topology, R, NULL},
    {"tunnels", &tunnel_out_list, R, NULL},
    {"warnings", &problem_items, R, "caveats found when it was saved"},
    {"created_at", &unix_s, R, NULL},
    {"updated_at", &unix_s, R, NULL},
};
static const struct api_schema policy_out = {.name = "Policy", .type = AT_OBJECT,
					     NPROPS(policy_props)};

#define ENROLL_PROPS                                                                               \
	{"id", &uuid, R, NULL}, {"name", &str_null, R, NULL}, {"tags", &str_list, R, NULL},       \
	    {"client_id", &uuid_null, R, NULL}, {"created_by", &uuid_null, R, NULL},              \
	    {"expires_at", &unix_s, R, NULL}, {"used_at", &unix_s_null, R, NULL},                 \
	    {"agent_id", &uuid_null, R, "the peer it enrolled"},                                  \
	    {"revoked", &boolean, R, NULL}, {"created_at", &unix_s, R, NULL}
static const struct api_prop enroll_props[] = {ENROLL_PROPS};
static const struct api_schema enroll_out = {.name = "EnrollmentToken", .type = AT_OBJECT,
					     NPROPS(enroll_props)};
static const struct api_prop enroll_created_props[] = {
    ENROLL_PROPS, {"token", &str, R, "sge_...; shown once, single use"}};
static const struct api_schema enroll_created_out = {
    .name = "EnrollmentTokenCreated", .type = AT_OBJECT, NPROPS(enroll_created_props)};

static const struct api_schema any_obj_null = {.type = AT_OBJECT, .open = true,
					       .nullable = true};
static const struct api_prop tunnel_end_props[] = {
    {"peer_id", &uuid, R, NULL},
    {"peer_name", &str, R, NULL},
    {"name", &str, R, NULL},
    {"type", &str, R, NULL},
    {"policy_id", &uuid_null, R, NULL},
    {"backend", &str_null, R, NULL},
    {"state", &str, R, "up, down, connecting or failed"},
    {"reason", &str_null, R, NULL},
    {"bytes_in", &int64, R, NULL},
    {"bytes_out", &int64, R, NULL},
    {"packets_in", &int64, R, NULL},
    {"packets_out", &int64, R, NULL},
    {"rekeys", &int64, R, NULL},
    {"restarts", &int64, R, NULL},
    {"established_at", &unix_s_null, R, NULL},
    {"updated_at", &unix_s, R, "when the agent last reported it"},
};
static const struct api_schema tunnel_end = {.name = "TunnelEnd", .type = AT_OBJECT,
					     NPROPS(tunnel_end_props)};
static const struct api_schema tunnel_end_list = {.type = AT_ARRAY, .items = &tunnel_end};
#define MPEER_PROPS                                                                                \
	{"id", &uuid, R, NULL}, {"name", &str, R, NULL},                                           \
	    {"public_key", &str, R, "the agent's credential"}, {"tags", &str_list, R, NULL},      \
	    {"client_id", &uuid_null, R, NULL}, {"interface", &str_null, R, NULL},                \
	    {"address", &str_null, R, NULL}, {"subnets", &str_list, R, NULL},                     \
	    {"hostname", &str_null, R, NULL}, {"platform", &str_null, R, NULL},                   \
	    {"version", &str_null, R, NULL}, {"backends", &str_list, R, NULL},                    \
	    {"state", &str, R, "registered, ok, degraded, failed, syncing or revoked"},          \
	    {"online", &boolean, R, "reported within the last 3 poll intervals"},                 \
	    {"revoked", &boolean, R, NULL},                                                        \
	    {"applied_revision", &str_null, R, "the configuration revision it runs"},             \
	    {"last_seen", &unix_s_null, R, NULL}, {"created_at", &unix_s, R, NULL},               \
	    {"updated_at", &unix_s, R, NULL}
static const struct api_prop mpeer_props[] = {MPEER_PROPS};
static const struct api_schema mpeer_out = {.name = "ManagedPeer", .type = AT_OBJECT,
					    NPROPS(mpeer_props)};
static const struct api_prop mpeer_detail_props[] = {
    MPEER_PROPS,
    {"report", &any_obj_null, R, "its last status report (PeerStatus)"},
    {"tunnels", &tunnel_end_list, R, "the tunnels it reported"},
};
static const struct api_schema mpeer_detail_out = {
    .name = "ManagedPeerDetail", .type = AT_OBJECT, NPROPS(mpeer_detail_props)};
static const struct api_prop agent_session_props[] = {
    {"session_token", &str, R, "sga_..."},
    {"token_type", &bearer_s, R, NULL},
    {"expires_in", &int64, R, "seconds"},
    {"agent_id", &uuid, R, NULL},
};
static const struct api_schema agent_session_out = {
    .name = "AgentSession", .type = AT_OBJECT, NPROPS(agent_session_props)};
static const struct api_prop status_recorded_props[] = {
    {"status", &recorded_s, R, NULL},
    {"revision", &str, R, "the revision the agent should run (resync when it differs)"},
};
static const struct api_schema status_recorded_out = {
    .name = "PeerStatusRecorded", .type = AT_OBJECT, NPROPS(status_recorded_props)};
static const struct api_schema secret_out = {.type = AT_STRING, .format = &api_f_password};
static const struct api_schema wg_config = {.type = AT_STRING, .format = &api_f_wg_config};
static const struct api_prop agent_tunnel_props[] = {
    TUNNEL_PROPS,
    {"secret", &secret_out, 0, "the pre-shared key (agents only)"},
    {"policy_id", &uuid_null, 0, NULL},
    {"policy_name", &str, 0, NULL},
    {"policy_version", &int64, 0, NULL},
    {"priority", &int64, 0, NULL},
    {"network_id", &uuid, 0, "wireguard"},
    {"config", &wg_config, 0, "wireguard: the client's wg-quick configuration (agents only)"},
};
static const struct api_schema agent_tunnel = {.name = "AgentTunnel", .type = AT_OBJECT,
					       NPROPS(agent_tunnel_props)};
static const struct api_schema agent_tunnel_list = {.type = AT_ARRAY, .items = &agent_tunnel};
static const struct api_prop agent_config_props[] = {
    {"peer_id", &uuid, R, NULL},
    {"revision", &str, R, "changes exactly when the content does"},
    {"poll_interval", &int64, R, "seconds between polls when no push arrives"},
    {"tunnels", &agent_tunnel_list, R, "every tunnel the node runs, secrets included for the "
				       "agent itself (never for admins)"},
    {"problems", &str_list, R, "what could not be expanded (a peer without an address ...)"},
    {"gateway", &gw_doc, 0,
     "a gateway's configuration document (docs/GATEWAY.md; client secrets for the gateway "
     "itself only)"},
};
static const struct api_schema agent_config_out = {.name = "AgentConfig", .type = AT_OBJECT,
						   NPROPS(agent_config_props)};
static const char *const agg_states[] = {"up", "partial", "down", NULL};
static const struct api_schema agg_state = {.type = AT_STRING, .enumv = agg_states};
static const struct api_prop tunnel_agg_props[] = {
    {"name", &str, R, NULL},
    {"type", &str, R, NULL},
    {"policy_id", &uuid_null, R, NULL},
    {"state", &agg_state, R, "up when every end is up, down when none is"},
    {"ends", &tunnel_end_list, R, "each peer's side, as its agent reports it"},
};
static const struct api_schema tunnel_agg = {.name = "TunnelStatus", .type = AT_OBJECT,
					     NPROPS(tunnel_agg_props)};

/* Pages: every list answers {items, total, limit, offset}. */
#define PAGE(var, nm, item)                                                                        \
	static const struct api_schema var##_items = {.type = AT_ARRAY, .items = &item};          \
	static const struct api_prop var##_props[] = {                                             \
	    {"items", &var##_items, R, NULL},                                                      \
	    {"total", &int64, R, "rows matching, in all pages"},                                   \
	    {"limit", &int64, R, NULL},                                                            \
	    {"offset", &int64, R, NULL},                                                           \
	};                                                                                         \
	static const struct api_schema var = {.name = nm, .type = AT_OBJECT, NPROPS(var##_props)}
PAGE(user_page, "UserPage", user_out);
PAGE(passkey_page, "PasskeyPage", passkey_out);
PAGE(apikey_page, "ApiKeyPage", apikey_out);
PAGE(net_page, "NetworkPage", net_out);
PAGE(peer_page, "PeerPage", peer_out);
/* The lists that also page by cursor (list.c) add next_cursor. */
#define PAGE_CURSOR(var, nm, item)                                                                 \
	static const struct api_schema var##_items = {.type = AT_ARRAY, .items = &item};          \
	static const struct api_prop var##_props[] = {                                             \
	    {"items", &var##_items, R, NULL},                                                      \
	    {"total", &int64, R,                                                                   \
	     "rows matching, in all pages; on a page read by cursor, as counted at the walk's "    \
	     "first page"},                                                                        \
	    {"limit", &int64, R, NULL},                                                            \
	    {"offset", &int64, R,                                                                  \
	     "rows before this page; on a page read by cursor, the rows the walk has passed"},     \
	    {"next_cursor", &str_null, R,                                                          \
	     "the cursor parameter for the page after this one; null on the last page"},           \
	};                                                                                         \
	static const struct api_schema var = {.name = nm, .type = AT_OBJECT, NPROPS(var##_props)}
PAGE_CURSOR(client_page, "ClientPage", client_out);
PAGE(vpn_page, "VpnSessionPage", vpn_out);
PAGE(temp_page, "TempAccessPage", temp_out);
PAGE_CURSOR(audit_page, "AuditEventPage", audit_out);
PAGE_CURSOR(conn_page, "ConnectionPage", conn_out);
PAGE(policy_page, "PolicyPage", policy_out);
PAGE(enroll_page, "EnrollmentTokenPage", enroll_out);
PAGE(mpeer_page, "ManagedPeerPage", mpeer_out);
PAGE(tunnel_page, "TunnelStatusPage", tunnel_agg);

#define API_GW_SCHEMAS
#include "server/api_gateway.inc"

/* After the provider's schemas (op_code, op_verifier, op_uri, op_opaque). */
static const struct api_prop vpn_oidc_props[] = {
    {"client", &vpn_client, R, "the client's id or name, among the clients the account owns"},
    {"oidc_code", &op_code, R,
     "the code the OpenID provider sent to the redirect URI (client secureguard-cli)"},
    {"code_verifier", &op_verifier, R, "the PKCE verifier of the authorization request"},
    {"redirect_uri", &op_uri, R, "as in the authorization request"},
    {"nonce", &op_opaque, 0, "as in the authorization request (required when it had one)"},
    {"duration_seconds", &vpn_duration, 0,
     "a shorter session than the network's mfa_session_hours (longer is cut to it)"},
};
static const struct api_schema vpn_oidc_in = {
    .name = "VpnSessionOpenOidc", .type = AT_OBJECT, NPROPS(vpn_oidc_props),
    .description = "A login through this server's OpenID provider: docs/SERVER.md \"VPN sessions "
		   "through the OpenID provider\""};
#undef API_GW_SCHEMAS

const struct api_schema *const api_components[] = {
    &api_problem,     &empty_in,	 &login_in,	 &refresh_in,	   &logout_in,
    &client_auth_in,  &user_create_in,	 &user_update_in,  &apikey_create_in,
    &net_create_in,   &net_update_in,	 &client_create_in, &client_update_in,
    &regen_in,	      &temp_create_in,	 &conn_report_in,  &settings_update_in,
    &tokens_out,      &logout_out,	 &challenge_out,   &session_out,
    &me_out,	      &login_out,	 &mfa_challenge_out, &login_mfa_in,
    &att_cred,        &passkey_reg_in,	 &passkey_rename_in, &asr_cred,
    &pk_login_opts_in, &pk_login_in,	 &passkey_out,	   &passkey_page,
    &pk_create_out,   &pk_request_out,
    &totp_code_in,    &totp_start_out,	 &recovery_out,	      &user_out,	 &user_page,	   &apikey_out,
    &apikey_page,     &apikey_created_out, &net_out,	   &net_page,
    &peer_out,	      &peer_page,	 &client_out,	   &client_page,
    &temp_out,	      &temp_page,	 &temp_created_out, &audit_out,
    &audit_page,      &conn_out,	 &conn_page,	   &conn_recorded_out,
    &settings_out,    &health_out,	&license_out,	&ready_out,	&problem_item,	   &tunnel_in,
    &topology,	      &policy_create_in, &policy_update_in, &enroll_create_in,
    &register_in,     &agent_auth_in,	 &peer_update_in,  &tunnel_report,
    &wg_peer_report,  &wg_report,	 &agent_error,	   &status_in,
    &tunnel_out,      &policy_out,	 &policy_page,	   &enroll_out,
    &enroll_created_out, &enroll_page,	 &tunnel_end,	   &mpeer_out,
    &mpeer_page,      &mpeer_detail_out, &agent_session_out, &status_recorded_out,
    &agent_tunnel,    &agent_config_out, &tunnel_agg,	   &tunnel_page,
    &redeemed_out,    &stats_sample,	 &stats_out,	   &verify_out, &cert_info, &certs_out, &cert_exp,
    API_GW_COMPONENTS,
    /* MFA-gated VPN sessions (routes_vpn.c) */
    &vpn_open_in,     &vpn_oidc_in,	 &vpn_end_in,	 &vpn_opened_out,  &vpn_out,	      &vpn_page,
    /* TLS session tokens (routes_vpn.c, docs/TLS.md) */
    &tls_jwk_out,     &tls_key_out,	 &vpn_tls_out,
};
const size_t api_ncomponents = SG_ARRAY_LEN(api_components);

/* ---- parameters ---------------------------------------------------------------------------- */

static const struct api_schema limit = {.type = AT_INTEGER, .int_format = "int64",
					.has_min = true, .min = 1, .has_max = true, .max = 500,
					.default_json = "50"};
static const struct api_schema offset = {.type = AT_INTEGER, .int_format = "int64",
					 .has_min = true, .min = 0, .has_max = true,
					 .max = 2147483647, .default_json = "0"};
/* The logs (audit, connections) page by up to 1000 rows. */
static const struct api_schema limit_log = {.type = AT_INTEGER, .int_format = "int64",
					    .has_min = true, .min = 1, .has_max = true,
					    .max = 1000, .default_json = "100"};
static const struct api_schema q_uuid = {.type = AT_STRING, .format = &api_f_uuid};
static const struct api_schema q_name = {.type = AT_STRING, .format = &api_f_name,
					 .min_len = 1, .max_len = 64};
static const struct api_schema q_bool = {.type = AT_BOOLEAN};
static const struct api_schema q_token = {.type = AT_STRING, .format = &api_f_temp_ref};
static const struct api_schema q_word = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
					 .max_len = 128};
static const struct api_schema q_actor = {.type = AT_STRING, .format = &api_f_text,
					  .min_len = 1, .max_len = 256};
static const struct api_schema q_ms = {.type = AT_INTEGER, .int_format = "int64",
				       .has_min = true, .min = 0, .has_max = true,
				       .max = JS_MAX_SAFE, .description = "Unix time, milliseconds"};
static const struct api_schema q_s = {.type = AT_INTEGER, .int_format = "int64",
				      .has_min = true, .min = 0, .has_max = true,
				      .max = JS_MAX_SAFE, .description = "Unix time, seconds"};
static const char *const conf_fmts[] = {"conf", "qr", NULL};
static const struct api_schema q_conf_fmt = {.type = AT_STRING, .enumv = conf_fmts,
					     .default_json = "\"conf\""};
static const struct api_schema q_search = {.type = AT_STRING, .format = &api_f_text,
					   .min_len = 1, .max_len = 64};
static const char *const redeem_fmts[] = {"conf", "json", NULL};
static const struct api_schema q_redeem_fmt = {.type = AT_STRING, .enumv = redeem_fmts,
					       .default_json = "\"conf\""};
static const struct api_schema q_event_id = {.type = AT_INTEGER, .int_format = "int64",
					     .has_min = true, .min = 0, .has_max = true,
					     .max = JS_MAX_SAFE};
static const struct api_schema q_event_wait = {.type = AT_INTEGER, .int_format = "int64",
					       .has_min = true, .min = 0, .has_max = true,
					       .max = 60, .default_json = "20"};
static const char *const export_fmts[] = {"json", "csv", NULL};
static const struct api_schema q_export_fmt = {.type = AT_STRING, .enumv = export_fmts,
					       .default_json = "\"json\""};

#define P_ID	{"id", IN_PATH, &q_uuid, true, NULL}
#define P_LIMIT {"limit", IN_QUERY, &limit, false, "page size"}
#define P_OFFSET {"offset", IN_QUERY, &offset, false, "rows to skip"}
/* A cursor is base64url of at most SRV_CURSOR_BIN_MAX bytes (cursor.h); the rest of its check
 * (version, fields, MAC) is list.c's, answered with a 400 naming it too. */
static const struct api_schema q_cursor = {.type = AT_STRING, .format = &api_f_b64url,
					   .min_len = 1, .max_len = SRV_CURSOR_MAX};
#define P_CURSOR                                                                                   \
	{"cursor", IN_QUERY, &q_cursor, false,                                                     \
	 "next_cursor of the page before: the page after that one's last row, read through the "  \
	 "index from there instead of skipping offset rows (not with offset)"}
static const struct api_param p_id[] = {P_ID};
static const char *const totp_fmts[] = {"json", "qr", NULL};
static const struct api_schema q_totp_fmt = {.type = AT_STRING, .enumv = totp_fmts,
					     .default_json = "\"json\""};
static const struct api_param p_totp_fmt[] = {
    {"format", IN_QUERY, &q_totp_fmt, false, "json: the secret and its URI; qr: a PNG of the URI"}};
static const struct api_param p_page[] = {P_LIMIT, P_OFFSET};
static const struct api_param p_id_page[] = {P_ID, P_LIMIT, P_OFFSET};
static const struct api_param p_clients[] = {
    {"network_id", IN_QUERY, &q_uuid, false, "only this network"},
    {"name", IN_QUERY, &q_name, false, "this exact name"},
    {"enabled", IN_QUERY, &q_bool, false, NULL},
    {"online", IN_QUERY, &q_bool, false, NULL},
    {"q", IN_QUERY, &q_search, false,
     "the name or an address contains this (case-insensitive for ASCII letters)"},
    P_LIMIT,
    P_OFFSET,
    P_CURSOR,
};
static const struct api_param p_temp_list[] = {
    {"network_id", IN_QUERY, &q_uuid, false, "only this network"}, P_LIMIT, P_OFFSET};
static const struct api_param p_token[] = {
    {"token", IN_PATH, &q_token, true, "sgt_ token (redeem, revoke) or grant id (revoke)"}};
static const struct api_param p_redeem[] = {
    {"token", IN_PATH, &q_token, true, "sgt_ token"},
    {"format", IN_QUERY, &q_redeem_fmt, false,
     "conf (default): the config file; json: the config and a PNG QR code of it (the guest "
     "page)"}};
static const struct api_param p_config[] = {
    P_ID, {"format", IN_QUERY, &q_conf_fmt, false, "conf: the wg-quick file; qr: a PNG"}};
static const struct api_param p_audit[] = {
    {"event_type", IN_QUERY, &q_word, false, "e.g. client.created"},
    {"actor_id", IN_QUERY, &q_actor, false, "who"},
    {"resource_type", IN_QUERY, &q_word, false, "on what"},
    {"since", IN_QUERY, &q_ms, false, "ts >= since"},
    {"until", IN_QUERY, &q_ms, false, "ts < until"},
    {"limit", IN_QUERY, &limit_log, false, "page size"},
    P_OFFSET,
    P_CURSOR,
};
static const struct api_param p_export[] = {
    {"format", IN_QUERY, &q_export_fmt, false, NULL}};
static const struct api_param p_events[] = {
    {"since", IN_QUERY, &q_event_id, false,
     "the last audit id seen (the Last-Event-ID header says the same); without either, the "
     "answer is the current state at once"},
    {"wait", IN_QUERY, &q_event_wait, false,
     "seconds to wait for a new audit event before answering with the state alone"},
};
static const struct api_param p_conns[] = {
    {"client_id", IN_QUERY, &q_uuid, false, "only this client"},
    {"since", IN_QUERY, &q_s, false, "ts >= since"},
    {"limit", IN_QUERY, &limit_log, false, "page size"},
    P_OFFSET,
    P_CURSOR,
};


static const struct api_schema q_tag = {.type = AT_STRING, .format = &api_f_text, .min_len = 1,
					.max_len = 64};
static const struct api_schema q_since = {.type = AT_STRING, .format = &api_f_text,
					  .min_len = 1, .max_len = 128};
static const struct api_schema q_wait = {.type = AT_INTEGER, .int_format = "int64",
					 .has_min = true, .min = 0, .has_max = true, .max = 300,
					 .default_json = "0"};
static const struct api_schema q_tunnel_name = {.type = AT_STRING, .format = &api_f_text,
						.min_len = 1, .max_len = 200};
static const struct api_param p_vpn[] = {
    {"client_id", IN_QUERY, &q_uuid, false, NULL},
    {"user_id", IN_QUERY, &q_uuid, false, NULL},
    {"active", IN_QUERY, &q_bool, false, "true: open now; false: ended; default: all"},
    P_LIMIT,
    P_OFFSET,
};
static const struct api_param p_policies[] = {
    {"enabled", IN_QUERY, &q_bool, false, NULL}, P_LIMIT, P_OFFSET};
static const struct api_param p_peers[] = {
    {"tag", IN_QUERY, &q_tag, false, "only peers with this tag"},
    {"revoked", IN_QUERY, &q_bool, false, "default: all"},
    P_LIMIT,
    P_OFFSET,
};
static const struct api_param p_peer_config[] = {
    P_ID,
    {"since", IN_QUERY, &q_since, false,
     "the revision the caller has: with wait, the answer waits until the configuration "
     "differs (204 when the wait ends without a change)"},
    {"wait", IN_QUERY, &q_wait, false, "seconds to wait for a change (a long poll)"},
};
static const struct api_param p_tunnels[] = {
    {"peer_id", IN_QUERY, &q_uuid, false, "only tunnels of this peer"}, P_LIMIT, P_OFFSET};
static const struct api_param p_tunnel_name[] = {
    {"name", IN_PATH, &q_tunnel_name, true, "the tunnel's name"}};

/* ---- responses ----------------------------------------------------------------------------- */

#define J  "application/json"
#define PJ "application/problem+json"
#define E400 {400, "invalid input (field names it)", PJ, &api_problem, NULL, NULL}
#define E401 {401, "missing or bad credentials", PJ, &api_problem, NULL, NULL}
#define E403 {403, "the caller may not do this", PJ, &api_problem, NULL, NULL}
#define E404 {404, "no such resource", PJ, &api_problem, NULL, NULL}
#define E402                                                                                       \
	{402, "the license's clients (or the free edition's) are all taken (detail names it)", PJ, \
	 &api_problem, NULL, NULL}
#define E409 {409, "conflict (detail says which)", PJ, &api_problem, NULL, NULL}
#define E410 {410, "expired, revoked or used up", PJ, &api_problem, NULL, NULL}
#define E413 {413, "body larger than the limit", PJ, &api_problem, NULL, NULL}
#define E415 {415, "the body is not application/json", PJ, &api_problem, NULL, NULL}
#define E422 {422, "cannot be done (detail says why)", PJ, &api_problem, NULL, NULL}
#define E429 {429, "too many attempts (from this address, for this account, or logins waiting "   \
		   "for password hashing): retry after Retry-After seconds",                   \
	      PJ, &api_problem, NULL, NULL}
#define E503 {503, "busy; retry (Retry-After)", PJ, &api_problem, NULL, NULL}
#define OKJ(code, desc, sch) {code, desc, J, &sch, NULL, NULL}
#define NOBODY {204, "done", NULL, NULL, NULL, NULL}
#define RESP(a) .responses = a, .nresponses = (int)SG_ARRAY_LEN(a)
#define PARAMS(a) .params = a, .nparams = (int)SG_ARRAY_LEN(a)

static const struct api_response r_events[] = {
    {200, "server-sent events (WHATWG HTML, text/event-stream): an `audit` event (data: the "
	  "AuditEvent, id: its id) for each new audit row, then one `stats` event (data: a "
	  "StatsSample); the response then ends and the client asks again from the last id "
	  "(EventSource does, with Last-Event-ID)",
     "text/event-stream", &text, NULL, NULL},
    E400, E401, E403, E503};
static const struct api_response r_stats[] = {OKJ(200, "counts and the last hour", stats_out),
					      E400, E401, E403, E503};
static const struct api_response r_certs[] = {
    OKJ(200, "the certificates and keys this server knows of", certs_out), E400, E401, E403,
    E503};
static const struct api_response r_verify[] = {OKJ(200, "the chain's state", verify_out), E400,
					       E401, E403, E503};
static const struct api_response r_health[] = {OKJ(200, "alive", health_out), E400};
static const struct api_response r_ready[] = {
    OKJ(200, "ready: the database answers and holds this server's schema", ready_out), E400,
    {503, "not ready: the database or Redis is unreachable, or the database's schema is not this "
	  "server's (detail says which); Retry-After",
     PJ, &api_problem, NULL, NULL}};
static const struct api_response r_metrics[] = {
    {200, "Prometheus text", "text/plain; version=0.0.4", &text, NULL, NULL}, E400};
static const struct api_response r_openapi[] = {OKJ(200, "this document", any_object), E400};
static const struct api_response r_login[] = {
    OKJ(200, "logged in, or (second factor on) an mfa_token", login_out),
    E400, E401, E413, E415, E429, E503};
static const struct api_response r_login_mfa[] = {OKJ(200, "logged in", tokens_out), E400, E401,
						  E413, E415, E429, E503};
static const struct api_response r_totp_start[] = {
    {200, "the secret (format=json) or a QR code of its URI (format=qr)", J, &totp_start_out,
     "image/png", &png},
    E400, E401, E403, E409, E413, E415, E503};
static const struct api_response r_totp_confirm[] = {
    OKJ(200, "on; the recovery codes", recovery_out), E400, E401, E403, E409, E413, E415, E429,
    E503};
static const struct api_response r_totp_delete[] = {NOBODY, E400, E401, E403, E409, E413, E415,
						    E429, E503};
static const struct api_response r_totp_reset[] = {NOBODY, E400, E401, E403, E404, E409, E503};
static const struct api_response r_pk_reg_options[] = {
    OKJ(200, "options for navigator.credentials.create()", pk_create_out), E400, E401, E403,
    E404, E409, E413, E415, E503};
static const struct api_response r_pk_register[] = {
    OKJ(201, "added", passkey_out), E400, E401, E403, E404, E409, E413, E415, E429, E503};
static const struct api_response r_pk_list[] = {OKJ(200, "a page", passkey_page), E400, E401,
						E403, E503};
static const struct api_response r_pk_rename[] = {OKJ(200, "renamed", passkey_out), E400, E401,
						  E403, E404, E413, E415, E503};
static const struct api_response r_pk_delete[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_pk_reset[] = {NOBODY, E400, E401, E403, E404, E409, E503};
static const struct api_response r_pk_login_options[] = {
    OKJ(200, "options for navigator.credentials.get()", pk_request_out), E400, E401, E409, E413,
    E415, E429, E503};
static const struct api_response r_pk_login[] = {OKJ(200, "logged in", tokens_out), E400, E401,
						 E409, E413, E415, E429, E503};
static const struct api_response r_refresh[] = {OKJ(200, "new tokens", tokens_out), E400, E401,
						E413, E415, E503};
static const struct api_response r_logout[] = {OKJ(200, "done", logout_out), E400, E401, E403,
					       E413, E415, E503};
static const struct api_response r_challenge[] = {OKJ(200, "a challenge", challenge_out), E400,
						  E413, E415, E429};
static const struct api_response r_client_auth[] = {OKJ(200, "a session", session_out), E400,
						    E401, E413, E415, E429, E503};
static const struct api_response r_me[] = {OKJ(200, "the caller", me_out), E400, E401, E403};
static const struct api_response r_list_users[] = {OKJ(200, "a page", user_page), E400, E401,
						   E403, E503};
static const struct api_response r_create_user[] = {OKJ(201, "created", user_out), E400, E401,
						    E403, E409, E413, E415, E503};
static const struct api_response r_get_user[] = {OKJ(200, "the user", user_out), E400, E401,
						 E403, E404};
static const struct api_response r_update_user[] = {OKJ(200, "changed", user_out), E400, E401,
						    E403, E404, E409, E413, E415, E503};
static const struct api_response r_delete_user[] = {NOBODY, E400, E401, E403, E404, E409, E503};
static const struct api_response r_list_keys[] = {OKJ(200, "a page", apikey_page), E400, E401,
						  E403, E503};
static const struct api_response r_create_key[] = {OKJ(201, "created", apikey_created_out), E400,
						   E401, E403, E413, E415, E503};
static const struct api_response r_delete_key[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_list_nets[] = {OKJ(200, "a page", net_page), E400, E401, E403,
						  E503};
static const struct api_response r_create_net[] = {OKJ(201, "created", net_out), E400, E401, E403,
						   E409, E413, E415, E503};
static const struct api_response r_get_net[] = {OKJ(200, "the network", net_out), E400, E401,
						E403, E404};
static const struct api_response r_update_net[] = {OKJ(200, "changed", net_out), E400, E401,
						   E403, E404, E409, E413, E415, E503};
static const struct api_response r_delete_net[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_peers[] = {OKJ(200, "a page, hubs first", peer_page), E400,
					      E401, E403, E404, E503};
static const struct api_response r_list_clients[] = {OKJ(200, "a page", client_page), E400, E401,
						     E403, E503};
static const struct api_response r_create_client[] = {
    OKJ(201, "created", client_out), E400, E401, E402, E403, E404, E409, E413, E415, E503};
static const struct api_response r_get_client[] = {OKJ(200, "the client", client_out), E400, E401,
						   E403, E404};
static const struct api_response r_update_client[] = {
    OKJ(200, "changed", client_out), E400, E401, E403, E404, E409, E413, E415, E503};
static const struct api_response r_vpn_open[] = {
    OKJ(201, "a session: the client is a peer of its hubs within a second", vpn_opened_out),
    E400, E401, E403, E404, E409, E413, E415, E429, E503};
static const struct api_response r_vpn_open_oidc[] = {
    OKJ(201, "a session: the client is a peer of its hubs within a second", vpn_opened_out),
    E400, E401, E403, E404, E409, E413, E415, E429, E503};
static const struct api_response r_tls_key[] = {OKJ(200, "the key", tls_key_out), E400, E429};
static const struct api_response r_vpn_tls[] = {OKJ(200, "the token", vpn_tls_out),
						E400, E404, E409, E413, E415, E429, E503};
static const struct api_response r_vpn_end[] = {NOBODY, E400, E404, E413, E415, E429, E503};
static const struct api_response r_vpn_list[] = {OKJ(200, "a page, newest first", vpn_page),
						 E400, E401, E403, E503};
static const struct api_response r_vpn_revoke[] = {NOBODY, E400, E401, E403, E404, E409, E503};
static const struct api_response r_delete_client[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_config[] = {
    {200, "the config (format=conf) or its QR code (format=qr)", "text/plain; charset=utf-8",
     &text, "image/png", &png},
    E400,
    E401,
    E403,
    E404,
    E422,
    E503};
static const struct api_response r_regen[] = {OKJ(200, "new keys", client_out), E400, E401, E403,
					      E404, E409, E413, E415, E503};
static const struct api_response r_list_temp[] = {OKJ(200, "a page", temp_page), E400, E401,
						  E403, E503};
static const struct api_response r_create_temp[] = {
    OKJ(201, "created", temp_created_out), E400, E401, E403, E404,
    {409, "the network requires MFA-gated VPN sessions (mfa_required): no temporary access on it",
     PJ, &api_problem, NULL, NULL},
    E413, E415, E422, E503};
static const struct api_response r_redeem[] = {
    {200, "a config with fresh keys (format=json: with its QR code)", "text/plain; charset=utf-8",
     &text, J, &redeemed_out},
    E400,
    E402,
    E404,
    {409, "the network has no free address, or requires MFA-gated VPN sessions (mfa_required)",
     PJ, &api_problem, NULL, NULL},
    E410,
    E429,
    E503};
static const struct api_response r_head_temp[] = {{200, "valid", NULL, NULL, NULL, NULL},
						  {400, "malformed token", NULL, NULL, NULL, NULL},
						  {404, "unknown", NULL, NULL, NULL, NULL},
						  {409, "its network requires MFA-gated VPN sessions",
						   NULL, NULL, NULL, NULL},
						  {410, "expired, revoked or used up", NULL, NULL,
						   NULL, NULL},
						  {429, "too many unknown tokens from this address",
						   NULL, NULL, NULL, NULL}};
static const struct api_response r_delete_temp[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_audit[] = {OKJ(200, "a page, newest first", audit_page), E400,
					      E401, E403, E503};
static const struct api_response r_export[] = {
    {200, "the whole chain (docs/AUDIT.md)", "application/json", &audit_list,
     "text/csv; charset=utf-8", &text},
    E400,
    E401,
    E403,
    E503};
static const struct api_response r_conns[] = {OKJ(200, "a page, newest first", conn_page), E400,
					      E401, E403, E503};
static const struct api_response r_report[] = {
    OKJ(201, "recorded", conn_recorded_out), E400, E401, E403, E404, E413, E415, E503};
static const struct api_response r_settings[] = {OKJ(200, "the settings", settings_out), E400,
						 E401, E403, E503};
static const struct api_response r_put_settings[] = {
    OKJ(200, "changed", settings_out), E400, E401, E403, E409, E413, E415, E503};


static const struct api_response r_list_policies[] = {OKJ(200, "a page, highest priority first",
							  policy_page),
						      E400, E401, E403, E503};
static const struct api_response r_create_policy[] = {
    OKJ(201, "created", policy_out), E400, E401, E403, E409, E413, E415,
    {422, "the policy has problems: errors lists every one by field", PJ, &api_problem, NULL,
     NULL},
    E503};
static const struct api_response r_get_policy[] = {OKJ(200, "the policy", policy_out), E400,
						   E401, E403, E404};
static const struct api_response r_update_policy[] = {
    OKJ(200, "changed (version one more)", policy_out), E400, E401, E403, E404, E409, E413,
    E415,
    {422, "the policy has problems: errors lists every one by field", PJ, &api_problem, NULL,
     NULL},
    E503};
static const struct api_response r_delete_policy[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_create_enroll[] = {
    OKJ(201, "created", enroll_created_out), E400, E401, E403, E404, E413, E415, E503};
static const struct api_response r_list_enroll[] = {OKJ(200, "a page", enroll_page), E400, E401,
						    E403, E503};
static const struct api_response r_delete_enroll[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_register[] = {
    OKJ(201, "registered", mpeer_out),
    E400,
    {401, "unknown enrolment token", PJ, &api_problem, NULL, NULL},
    {409, "the name or the key is taken", PJ, &api_problem, NULL, NULL},
    {410, "the token was used, revoked or has expired", PJ, &api_problem, NULL, NULL},
    E413,
    E415,
    E429,
    E503};
static const struct api_response r_agent_auth[] = {
    OKJ(200, "a session", agent_session_out),
    E400,
    E401,
    {403, "the agent has been revoked", PJ, &api_problem, NULL, NULL},
    E413,
    E415,
    E429,
    E503};
static const struct api_response r_list_peers[] = {OKJ(200, "a page", mpeer_page), E400, E401,
						   E403, E503};
static const struct api_response r_get_peer[] = {OKJ(200, "the peer", mpeer_detail_out), E400,
						 E401, E403, E404, E503};
static const struct api_response r_update_peer[] = {
    OKJ(200, "changed", mpeer_out), E400, E401, E403, E404, E409, E413, E415, E503};
static const struct api_response r_revoke_peer[] = {NOBODY, E400, E401, E403, E404, E503};
static const struct api_response r_peer_status[] = {
    OKJ(200, "recorded", status_recorded_out), E400, E401, E403, E413, E415, E503};
static const struct api_response r_peer_config[] = {
    OKJ(200, "the configuration (it differs from since)", agent_config_out),
    {204, "the wait ended without a change", NULL, NULL, NULL, NULL},
    E400,
    E401,
    E403,
    E404,
    E503};
static const struct api_response r_list_tunnels[] = {OKJ(200, "a page, by name", tunnel_page),
						     E400, E401, E403, E503};
static const struct api_response r_get_tunnel[] = {OKJ(200, "the tunnel", tunnel_agg), E400,
						   E401, E403, E404, E503};

#define API_GW_ROUTES
#include "server/api_gateway.inc"
#undef API_GW_ROUTES

/* ---- routes -------------------------------------------------------------------------------- */

const char *const api_tags[][2] = {
    {"auth", "Logins, tokens and client sessions"},
    {"users", "Admin users (super_admin)"},
    {"api-keys", "API keys of the caller"},
    {"networks", "Networks and their peers"},
    {"clients", "Clients (peers) and their configs"},
    {"vpn-sessions", "MFA-gated VPN sessions: a client of an mfa_required network is a peer "
		     "while its owner holds one"},
    {"temporary-access", "Links that hand out a config"},
    {"audit", "The hash-chained audit log"},
    {"connections", "The connection log"},
    {"settings", "Instance settings"},
    {"policies", "Tunnel policies the agents apply (docs/AGENTS.md)"},
    {"peers", "Managed nodes (agents), their enrolment and status"},
    {"tunnels", "Tunnels as the agents report them"},
    API_GW_TAG,
    API_OP_TAG,
    {"system", "Health, metrics and this document"},
    {NULL, NULL},
};

const struct api_route api_routes[] = {
    {"POST", "/api/auth/login", "login", "auth",
     "Log in; failures are rate-limited per address and slow an account down", NULL, h_login,
     ROLE_NONE, AUTH_PUBLIC, .body = &login_in, .body_required = true, RESP(r_login)},
    {"POST", "/api/auth/refresh", "refreshTokens", "auth",
     "Rotate a refresh token; reusing one revokes its whole family", NULL, h_refresh, ROLE_NONE,
     AUTH_PUBLIC, .body = &refresh_in, RESP(r_refresh)},
    {"POST", "/api/auth/logout", "logout", "auth", "Revoke refresh tokens", NULL, h_logout,
     ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, .body = &logout_in, RESP(r_logout)},
    {"POST", "/api/auth/client/challenge", "clientChallenge", "auth",
     "A challenge for a client's key-possession proof", NULL, h_client_challenge, ROLE_NONE,
     AUTH_PUBLIC, .body = &empty_in, RESP(r_challenge)},
    {"POST", "/api/auth/client", "clientAuth", "auth",
     "A client session from a key-possession proof", NULL, h_client_auth, ROLE_NONE,
     AUTH_PUBLIC, .body = &client_auth_in, .body_required = true, RESP(r_client_auth)},
    {"GET", "/api/auth/me", "getMe", "auth", "Who the credentials belong to", NULL, h_me,
     ROLE_VIEWER, AUTH_CLIENT_OK | AUTH_AGENT_OK | AUTH_MFA_SETUP, RESP(r_me)},
    {"POST", "/api/auth/login/mfa", "loginMfa", "auth",
     "Second step of a login: the mfa_token and a TOTP or recovery code",
     "Wrong codes count toward the same per-address limit and per-(account, source) lockout as "
     "wrong passwords; five end the mfa_token. A code is good once.",
     h_login_mfa, ROLE_NONE, AUTH_PUBLIC, .body = &login_mfa_in, .body_required = true,
     RESP(r_login_mfa)},
    {"POST", "/api/auth/totp", "startTotp", "auth",
     "Start turning on a second factor (TOTP): the secret and its otpauth URI",
     "Asked again within 10 minutes, it answers the same secret (so the JSON and the QR code "
     "agree); after that, a new one. Nothing changes until POST /api/auth/totp/confirm.",
     h_totp_start, ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, PARAMS(p_totp_fmt),
     .body = &empty_in, RESP(r_totp_start)},
    {"POST", "/api/auth/totp/confirm", "confirmTotp", "auth",
     "Turn the second factor on with a code of the new secret; answers the recovery codes",
     NULL, h_totp_confirm, ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, .body = &totp_code_in,
     .body_required = true, RESP(r_totp_confirm)},
    {"DELETE", "/api/auth/totp", "deleteTotp", "auth",
     "Turn the second factor off (a TOTP or recovery code proves the device)", NULL,
     h_totp_delete, ROLE_VIEWER, AUTH_USER_ONLY, .body = &totp_code_in, .body_required = true,
     RESP(r_totp_delete)},
    {"POST", "/api/auth/passkeys/options", "passkeyRegistrationOptions", "auth",
     "Start adding a passkey: options for navigator.credentials.create()",
     "A fresh challenge bound to the caller, good for one registration within 5 minutes. The "
     "relying party is the server's --public-url (409 without one). Open to a user who must "
     "still set up a second factor: a passkey is one.",
     h_passkey_reg_options, ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, .body = &empty_in,
     RESP(r_pk_reg_options)},
    {"POST", "/api/auth/passkeys", "addPasskey", "auth",
     "Add a passkey: the authenticator's answer to the registration options",
     "Checked: the client data (type, the challenge, the origin), the rpId hash, user presence, "
     "the COSE key (ES256 or ES384 only), the attestation (none, or packed self-attestation "
     "whose signature verifies). Each refusal says what and where (field and detail).",
     h_passkey_register, ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, .body = &passkey_reg_in,
     .body_required = true, RESP(r_pk_register)},
    {"GET", "/api/auth/passkeys", "listPasskeys", "auth", "The caller's passkeys", NULL,
     h_passkeys_list, ROLE_VIEWER, AUTH_USER_ONLY | AUTH_MFA_SETUP, PARAMS(p_page),
     RESP(r_pk_list)},
    {"PUT", "/api/auth/passkeys/{id}", "renamePasskey", "auth", "Rename one of the caller's passkeys",
     NULL, h_passkey_rename, ROLE_VIEWER, AUTH_USER_ONLY, PARAMS(p_id),
     .body = &passkey_rename_in, .body_required = true, RESP(r_pk_rename)},
    {"DELETE", "/api/auth/passkeys/{id}", "deletePasskey", "auth",
     "Remove one of the caller's passkeys", NULL, h_passkey_delete, ROLE_VIEWER, AUTH_USER_ONLY,
     PARAMS(p_id), RESP(r_pk_delete)},
    {"POST", "/api/auth/login/passkey/options", "passkeyLoginOptions", "auth",
     "Options for navigator.credentials.get(): the second step of a login (with its mfa_token) "
     "or a login without a password",
     "Rate-limited per address. The challenge is good for one answer within 5 minutes.",
     h_passkey_login_options, ROLE_NONE, AUTH_PUBLIC, .body = &pk_login_opts_in,
     RESP(r_pk_login_options)},
    {"POST", "/api/auth/login/passkey", "loginPasskey", "auth",
     "Log in with a passkey (the second step after a password, or without a password)",
     "Wrong answers count toward the same per-address limit and per-(account, source) lockout "
     "as wrong passwords; with an mfa_token, five end it. Without a password the authenticator "
     "must have verified the user (flag UV). A signature counter that goes back is refused and "
     "audited (user.passkey_counter_regressed).",
     h_passkey_login, ROLE_NONE, AUTH_PUBLIC, .body = &pk_login_in, .body_required = true,
     RESP(r_pk_login)},
    {"GET", "/api/users", "listUsers", "users", "List admin users", NULL, h_users_list,
     ROLE_SUPER, 0, PARAMS(p_page), RESP(r_list_users)},
    {"POST", "/api/users", "createUser", "users", "Create an admin user", NULL, h_users_create,
     ROLE_SUPER, 0, .body = &user_create_in, .body_required = true, RESP(r_create_user)},
    {"GET", "/api/users/{id}", "getUser", "users", "Get a user", NULL, h_users_get, ROLE_SUPER,
     0, PARAMS(p_id), RESP(r_get_user)},
    {"PUT", "/api/users/{id}", "updateUser", "users",
     "Change a user (the fields given; 409 for the last super_admin)", NULL, h_users_update,
     ROLE_SUPER, 0, PARAMS(p_id), .body = &user_update_in, .body_required = true,
     RESP(r_update_user)},
    {"DELETE", "/api/users/{id}", "deleteUser", "users", "Delete a user", NULL, h_users_delete,
     ROLE_SUPER, 0, PARAMS(p_id), RESP(r_delete_user)},
    {"DELETE", "/api/users/{id}/totp", "resetUserTotp", "users",
     "Turn off another user's second factor (a lost device); ends the user's sessions", NULL,
     h_users_totp_reset, ROLE_SUPER, AUTH_USER_ONLY, PARAMS(p_id), RESP(r_totp_reset)},
    {"DELETE", "/api/users/{id}/passkeys", "resetUserPasskeys", "users",
     "Remove every passkey of another user (a lost authenticator); ends the user's sessions",
     NULL, h_users_passkeys_reset, ROLE_SUPER, AUTH_USER_ONLY, PARAMS(p_id), RESP(r_pk_reset)},
    {"GET", "/api/api-keys", "listApiKeys", "api-keys",
     "List API keys (the caller's; every key for a super_admin)", NULL, h_apikeys_list,
     ROLE_VIEWER, AUTH_USER_ONLY, PARAMS(p_page), RESP(r_list_keys)},
    {"POST", "/api/api-keys", "createApiKey", "api-keys", "Create an API key", NULL,
     h_apikeys_create, ROLE_VIEWER, AUTH_USER_ONLY, .body = &apikey_create_in,
     .body_required = true, RESP(r_create_key)},
    {"DELETE", "/api/api-keys/{id}", "revokeApiKey", "api-keys", "Revoke an API key", NULL,
     h_apikeys_delete, ROLE_VIEWER, AUTH_USER_ONLY, PARAMS(p_id), RESP(r_delete_key)},
    {"GET", "/api/networks", "listNetworks", "networks", "List networks", NULL, h_networks_list,
     ROLE_VIEWER, 0, PARAMS(p_page), RESP(r_list_nets)},
    {"POST", "/api/networks", "createNetwork", "networks",
     "Create a network (409: name taken, or classic while the instance allows no classic "
     "network)",
     NULL, h_networks_create, ROLE_ADMIN, 0, .body = &net_create_in, .body_required = true,
     RESP(r_create_net)},
    {"GET", "/api/networks/{id}", "getNetwork", "networks", "Get a network", NULL,
     h_networks_get, ROLE_VIEWER, 0, PARAMS(p_id), RESP(r_get_net)},
    {"PUT", "/api/networks/{id}", "updateNetwork", "networks",
     "Change a network (the fields given; subnets only while it has no clients)", NULL,
     h_networks_update, ROLE_ADMIN, 0, PARAMS(p_id), .body = &net_update_in,
     .body_required = true, RESP(r_update_net)},
    {"DELETE", "/api/networks/{id}", "deleteNetwork", "networks",
     "Delete a network with its clients", NULL, h_networks_delete, ROLE_ADMIN, 0, PARAMS(p_id),
     RESP(r_delete_net)},
    {"GET", "/api/networks/{id}/peers", "listNetworkPeers", "networks",
     "The network's clients as peers (hubs first)", NULL, h_networks_peers, ROLE_VIEWER, 0,
     PARAMS(p_id_page), RESP(r_peers)},
    {"GET", "/api/clients", "listClients", "clients", "List clients", NULL, h_clients_list,
     ROLE_VIEWER, 0, PARAMS(p_clients), RESP(r_list_clients)},
    {"POST", "/api/clients", "createClient", "clients",
     "Create a client: addresses from the network's subnets, keys generated unless supplied",
     NULL, h_clients_create, ROLE_ADMIN, 0, .body = &client_create_in, .body_required = true,
     RESP(r_create_client)},
    {"GET", "/api/clients/{id}", "getClient", "clients", "Get a client", NULL, h_clients_get,
     ROLE_VIEWER, 0, PARAMS(p_id), RESP(r_get_client)},
    {"PUT", "/api/clients/{id}", "updateClient", "clients", "Change a client (the fields given)",
     NULL, h_clients_update, ROLE_ADMIN, 0, PARAMS(p_id), .body = &client_update_in,
     .body_required = true, RESP(r_update_client)},
    {"DELETE", "/api/clients/{id}", "deleteClient", "clients", "Delete a client", NULL,
     h_clients_delete, ROLE_ADMIN, 0, PARAMS(p_id), RESP(r_delete_client)},
    {"GET", "/api/clients/{id}/config", "getClientConfig", "clients",
     "The client's wg-quick config file, or a PNG QR code of it", NULL, h_clients_config,
     ROLE_ADMIN, 0, PARAMS(p_config), RESP(r_config)},
    {"POST", "/api/clients/{id}/regenerate-keys", "regenerateClientKeys", "clients",
     "New server-generated keys, or the supplied public keys", NULL, h_clients_regen,
     ROLE_ADMIN, 0, PARAMS(p_id), .body = &regen_in, RESP(r_regen)},
    {"POST", "/api/vpn-sessions", "openVpnSession", "vpn-sessions",
     "Open a VPN session for a client with its owner's password and TOTP code",
     "A login: the same per-address limit, lockout and audit as POST /api/auth/login, and "
     "the code is spent as at POST /api/auth/login/mfa (a code is good once). The account "
     "needs a second factor (403 without). One open session per client: a new one replaces "
     "it. 409: the client is disabled, a hub, or its network is not mfa_required.",
     h_vpn_open, ROLE_NONE, AUTH_PUBLIC, .body = &vpn_open_in, .body_required = true,
     RESP(r_vpn_open)},
    {"POST", "/api/vpn-sessions/oidc", "openVpnSessionOidc", "vpn-sessions",
     "Open a VPN session for a client with a login through this server's OpenID provider",
     "The code of an authorization request of client secureguard-cli (PKCE S256, a loopback "
     "redirect URI: RFC 8252), whose login page asked the account's second factor; single use "
     "and bound to its verifier, redirect URI and nonce (401 naming oidc_code otherwise, "
     "audited as oidc.token_refused). 403: the account has no second factor any more; 404: "
     "the server has no --public-url. Then as POST /api/vpn-sessions.",
     h_vpn_open_oidc, ROLE_NONE, AUTH_PUBLIC, .body = &vpn_oidc_in, .body_required = true,
     RESP(r_vpn_open_oidc)},
    {"POST", "/api/vpn-sessions/end", "endVpnSession", "vpn-sessions",
     "End the session of a session token (the user disconnects): the peer leaves the hubs",
     NULL, h_vpn_end, ROLE_NONE, AUTH_PUBLIC, .body = &vpn_end_in, .body_required = true,
     RESP(r_vpn_end)},
    {"POST", "/api/vpn-sessions/tls-token", "getVpnSessionTlsToken", "vpn-sessions",
     "The TLS session token of an open session, by its session token",
     "Signed anew for the session's client key and time (docs/TLS.md, \"Session tokens\"). 409: "
     "the client has no classic key.",
     h_vpn_tls_token, ROLE_NONE, AUTH_PUBLIC, .body = &vpn_end_in, .body_required = true,
     RESP(r_vpn_tls)},
    {"GET", "/api/tls-session-key", "getTlsSessionKey", "vpn-sessions",
     "The public key that verifies the TLS transport's session tokens",
     "Derived from the master key: the same on every server of a cluster. Public, as a JWKS.",
     h_tls_session_key, ROLE_NONE, AUTH_PUBLIC, RESP(r_tls_key)},
    {"GET", "/api/vpn-sessions", "listVpnSessions", "vpn-sessions",
     "VPN sessions, open and ended", NULL, h_vpn_list, ROLE_VIEWER, 0, PARAMS(p_vpn),
     RESP(r_vpn_list)},
    {"DELETE", "/api/vpn-sessions/{id}", "revokeVpnSession", "vpn-sessions",
     "Revoke an open session: the peer leaves the hubs within a second", NULL, h_vpn_revoke,
     ROLE_ADMIN, 0, PARAMS(p_id), RESP(r_vpn_revoke)},
    {"GET", "/api/temp-access", "listTempAccess", "temporary-access",
     "List temporary access grants", NULL, h_temp_list, ROLE_VIEWER, 0, PARAMS(p_temp_list),
     RESP(r_list_temp)},
    {"POST", "/api/temp-access", "createTempAccess", "temporary-access",
     "Create a temporary access grant",
     "409 on a network with mfa_required: a guest has no account to open the VPN session that "
     "such a network asks of its clients' owners.",
     h_temp_create, ROLE_ADMIN, 0,
     .body = &temp_create_in, .body_required = true, RESP(r_create_temp)},
    {"GET", "/api/temp-access/{token}", "redeemTempAccess", "temporary-access",
     "Redeem: counts a use and answers a config with fresh keys", NULL, h_temp_redeem,
     ROLE_NONE, AUTH_PUBLIC, PARAMS(p_redeem), RESP(r_redeem)},
    {"HEAD", "/api/temp-access/{token}", "checkTempAccess", "temporary-access",
     "Check a link without redeeming it (link previewers): counts nothing", NULL,
     h_temp_redeem, ROLE_NONE, AUTH_PUBLIC, PARAMS(p_token), RESP(r_head_temp)},
    {"DELETE", "/api/temp-access/{token}", "revokeTempAccess", "temporary-access",
     "Revoke a grant and delete its clients", NULL, h_temp_delete, ROLE_ADMIN, 0,
     PARAMS(p_token), RESP(r_delete_temp)},
    {"GET", "/api/audit", "listAuditEvents", "audit", "Audit events, newest first", NULL,
     h_audit_list, ROLE_VIEWER, 0, PARAMS(p_audit), RESP(r_audit)},
    {"GET", "/api/audit/export", "exportAudit", "audit",
     "The whole hash chain, streamed, in the formats of docs/AUDIT.md", NULL, h_audit_export,
     ROLE_ADMIN, 0, PARAMS(p_export), RESP(r_export)},
    {"GET", "/api/audit/verify", "verifyAudit", "audit",
     "Whether the audit log's hash chain verifies (cached while it did not grow)", NULL,
     h_audit_verify, ROLE_VIEWER, 0, RESP(r_verify)},
    {"GET", "/api/events", "streamEvents", "system",
     "Live updates for the console: new audit events and counts, as server-sent events", NULL,
     h_events, ROLE_VIEWER, 0, PARAMS(p_events), RESP(r_events)},
    {"GET", "/api/stats", "getStats", "system",
     "Counts of clients, peers and gateways online, traffic, and their last hour", NULL,
     h_stats, ROLE_VIEWER, 0, RESP(r_stats)},
    {"GET", "/api/certificates", "listCertificates", "system",
     "Expiry of the certificates and age of the keys this server knows of", NULL,
     h_certificates, ROLE_VIEWER, 0, RESP(r_certs)},
    {"GET", "/api/connections", "listConnections", "connections",
     "Connection log, newest first", NULL, h_conn_list, ROLE_VIEWER, 0, PARAMS(p_conns),
     RESP(r_conns)},
    {"POST", "/api/connections", "reportConnection", "connections",
     "Report a connection event (nodes)", NULL, h_conn_create, ROLE_ADMIN, AUTH_CLIENT_OK,
     .body = &conn_report_in, .body_required = true, RESP(r_report)},
    {"GET", "/api/settings", "getSettings", "settings", "Instance settings", NULL,
     h_settings_get, ROLE_VIEWER, 0, RESP(r_settings)},
    {"PUT", "/api/settings", "updateSettings", "settings",
     "Change settings (the fields given); 409 when allow_classic_fallback would be turned off "
     "while classic networks exist",
     NULL, h_settings_put, ROLE_SUPER, 0, .body = &settings_update_in, .body_required = true,
     RESP(r_put_settings)},
    {"GET", "/api/policies", "listPolicies", "policies", "List policies", NULL,
     h_policies_list, ROLE_VIEWER, 0, PARAMS(p_policies), RESP(r_list_policies)},
    {"POST", "/api/policies", "createPolicy", "policies",
     "Create a policy: every problem is listed at once (422); agents get it within a second",
     NULL, h_policies_create, ROLE_ADMIN, 0, .body = &policy_create_in, .body_required = true,
     RESP(r_create_policy)},
    {"GET", "/api/policies/{id}", "getPolicy", "policies", "Get a policy", NULL, h_policies_get,
     ROLE_VIEWER, 0, PARAMS(p_id), RESP(r_get_policy)},
    {"PUT", "/api/policies/{id}", "updatePolicy", "policies",
     "Change a policy (the fields given); agents reconcile only what changed", NULL,
     h_policies_update, ROLE_ADMIN, 0, PARAMS(p_id), .body = &policy_update_in,
     .body_required = true, RESP(r_update_policy)},
    {"DELETE", "/api/policies/{id}", "deletePolicy", "policies",
     "Delete a policy; agents remove its tunnels", NULL, h_policies_delete, ROLE_ADMIN, 0,
     PARAMS(p_id), RESP(r_delete_policy)},
    {"POST", "/api/enrollment-tokens", "createEnrollmentToken", "peers",
     "A one-time token an agent trades for its own credential", NULL, h_enroll_create,
     ROLE_ADMIN, 0, .body = &enroll_create_in, RESP(r_create_enroll)},
    {"GET", "/api/enrollment-tokens", "listEnrollmentTokens", "peers", "List enrolment tokens",
     NULL, h_enroll_list, ROLE_VIEWER, 0, PARAMS(p_page), RESP(r_list_enroll)},
    {"DELETE", "/api/enrollment-tokens/{id}", "revokeEnrollmentToken", "peers",
     "Revoke an unused enrolment token", NULL, h_enroll_delete, ROLE_ADMIN, 0, PARAMS(p_id),
     RESP(r_delete_enroll)},
    {"POST", "/api/peers/register", "registerPeer", "peers",
     "An agent registers with an enrolment token and its public key", NULL, h_peers_register,
     ROLE_NONE, AUTH_PUBLIC, .body = &register_in, .body_required = true, RESP(r_register)},
    {"POST", "/api/auth/agent", "agentAuth", "auth",
     "An agent session from a key-possession proof", NULL, h_agent_auth, ROLE_NONE,
     AUTH_PUBLIC, .body = &agent_auth_in, .body_required = true, RESP(r_agent_auth)},
    {"GET", "/api/peers", "listPeers", "peers", "List managed peers (agents)", NULL,
     h_peers_list, ROLE_VIEWER, 0, PARAMS(p_peers), RESP(r_list_peers)},
    {"GET", "/api/peers/{id}", "getPeer", "peers",
     "A managed peer with its last report and tunnels (an agent: itself only)", NULL,
     h_peers_get, ROLE_VIEWER, AUTH_AGENT_OK, PARAMS(p_id), RESP(r_get_peer)},
    {"PUT", "/api/peers/{id}", "updatePeer", "peers",
     "Change a peer's name, tags, address, subnets or bound client", NULL, h_peers_update,
     ROLE_ADMIN, 0, PARAMS(p_id), .body = &peer_update_in, .body_required = true,
     RESP(r_update_peer)},
    {"DELETE", "/api/peers/{id}", "revokePeer", "peers",
     "Revoke a peer: its sessions end at once and no policy includes it any more", NULL,
     h_peers_delete, ROLE_ADMIN, 0, PARAMS(p_id), RESP(r_revoke_peer)},
    {"PUT", "/api/peers/{id}/status", "reportPeerStatus", "peers",
     "An agent reports its state, tunnels and WireGuard peers", NULL, h_peers_status,
     ROLE_NONE, AUTH_AGENT_ONLY, PARAMS(p_id), .body = &status_in, .body_required = true,
     RESP(r_peer_status)},
    {"GET", "/api/peers/{id}/config", "getPeerConfig", "peers",
     "What the peer runs: its agent's configuration (a long poll with since and wait; admins "
     "see it without secrets)",
     NULL, h_peers_config, ROLE_ADMIN, AUTH_AGENT_OK, PARAMS(p_peer_config),
     RESP(r_peer_config)},
    {"GET", "/api/tunnels", "listTunnels", "tunnels",
     "Tunnels as agents report them, both ends together", NULL, h_tunnels_list, ROLE_VIEWER, 0,
     PARAMS(p_tunnels), RESP(r_list_tunnels)},
    {"GET", "/api/tunnels/{name}", "getTunnel", "tunnels", "One tunnel with its ends", NULL,
     h_tunnels_get, ROLE_VIEWER, 0, PARAMS(p_tunnel_name), RESP(r_get_tunnel)},
    API_GW_ROUTE_TABLE,
    {"GET", "/api/health", "getHealth", "system", "Liveness", NULL, NULL, ROLE_NONE, AUTH_PUBLIC,
     RESP(r_health)},
    {"GET", "/api/ready", "getReady", "system",
     "Readiness for load balancers: the database (and Redis) reachable, migrations done", NULL,
     h_ready,
     ROLE_NONE, AUTH_PUBLIC, RESP(r_ready)},
    {"GET", "/metrics", "getMetrics", "system",
     "Prometheus metrics: requests by route and status, latency histograms, connections", NULL,
     NULL, ROLE_NONE, AUTH_PUBLIC, RESP(r_metrics)},
    {"GET", "/api/openapi.json", "getOpenApi", "system", "This document", NULL, h_openapi,
     ROLE_NONE, AUTH_PUBLIC, RESP(r_openapi)},
};
const size_t api_nroutes = SG_ARRAY_LEN(api_routes);
