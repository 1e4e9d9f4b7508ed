// Invalid input derived from docs/openapi.json, sent to a running server: every operation,
// every parameter and body field gets values the document forbids (wrong type, out of range,
// too long or too short, not in the enum, a malformed format, NUL, bytes that are not UTF-8,
// null where not nullable, a missing required field, an unknown field, repeated or
// value-less parameters), plus the wrong Content-Types and empty bodies. Each must be answered
// with a 4xx problem document naming the field when one is at fault, and change nothing: the
// audit chain's head and the target resource read the same before and after.
//
//   node negative.mjs --doc docs/openapi.json --url http://127.0.0.1:PORT \
//        --email ADMIN --password PW
//
// ajv checks the other direction on the way: each mutated body is invalid per the document
// (so the test never blames the server for the document's looseness), and each baseline body is
// valid. Exit status 0 when every case holds.
import crypto from "node:crypto";
import fs from "node:fs";
import nodeHttp from "node:http";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import SwaggerParser from "@apidevtools/swagger-parser";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const doc = await SwaggerParser.dereference(JSON.parse(fs.readFileSync(args.doc, "utf8")));
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const customFormats = ["text", "ipv4-subnet", "ipv6-subnet", "cidr", "ip", "endpoint",
  "wireguard-key", "fips-key", "challenge", "proof", "refresh-token", "temp-access-ref",
  "password", "binary", "wg-config", "pem", "name", "domain", "ip-port", "sha384-hex"];
for (const f of customFormats) ajv.addFormat(f, true);

let cases = 0;
const fails = [];
const fail = (m) => {
  fails.push(m);
  if (fails.length <= 60) console.log("[negative] FAIL: " + m);
};

function rawHttp(method, path, headers, data) {
  return new Promise((resolve, reject) => {
    const u = new URL(args.url);
    const req = nodeHttp.request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = method === "HEAD" ? "" : Buffer.concat(chunks).toString("utf8");
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        resolve({ status: res.statusCode, ctype: res.headers["content-type"] || "", text, json });
      });
    });
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

async function http(method, path, { body, raw, ctype, token } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let data;
  if (raw !== undefined) data = raw;
  else if (body !== undefined) data = JSON.stringify(body);
  if (data !== undefined && ctype !== null) headers["Content-Type"] = ctype || "application/json";
  // fetch() resolves dot segments before sending (/api/peers/../status becomes /api/status),
  // so those go out as written through node:http.
  if (/\/\.\.?(\/|$)/.test(path)) return rawHttp(method, path, headers, data);
  const r = await fetch(args.url + path, { method, headers, body: data });
  const text = method === "HEAD" ? "" : await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  return { status: r.status, ctype: r.headers.get("content-type") || "", text, json };
}

// ---- fixtures: a valid target for every path parameter ---------------------------------
const login = await http("POST", "/api/auth/login", { body: { email: args.email, password: args.password } });
if (login.status !== 200) {
  console.log("[negative] cannot log in: " + login.text);
  process.exit(1);
}
const tok = login.json.access_token;
const refreshTok = login.json.refresh_token;
const uniq = Date.now().toString(36);
const mk = async (path, body) => {
  const r = await http("POST", path, { body, token: tok });
  if (r.status !== 201) throw new Error(`fixture ${path}: ${r.status} ${r.text}`);
  return r.json;
};
const net = await mk("/api/networks", { name: "neg-" + uniq, subnet4: "10.77.0.0/24" });
const client = await mk("/api/clients", { network_id: net.id, name: "neg-client" });
const user = await mk("/api/users", { email: `neg-${uniq}@example.com`, password: "a long password!", role: "viewer" });
const key = await mk("/api/api-keys", { name: "neg-key" });
const grant = await mk("/api/temp-access", { network_id: net.id });
// Agents (docs/AGENTS.md): a peer registered with its own X25519 key, a policy, tokens.
const agentKey = () => Buffer.from(crypto.generateKeyPairSync("x25519").publicKey
  .export({ format: "jwk" }).x, "base64url").toString("base64");
const TUNNEL = { name: "t", type: "ipsec", version: 2, local_addrs: ["%any"], remote_addrs: ["192.0.2.1"],
  local_ts: ["10.1.0.0/16"], remote_ts: ["10.2.0.0/16"], proposals: ["aes256gcm16-prfsha256-x25519"],
  esp_proposals: ["aes256gcm16"], auth: "psk", secret: "12345678", rekey_time: 3600, life_time: 4000,
  dpd_delay: 30, dpd_action: "restart", mode: "tunnel", start_action: "start", encap: false };
const policy = await mk("/api/policies", { name: "neg-" + uniq, applies_to: ["neg"], tunnels: [TUNNEL] });
const etokPeer = await mk("/api/enrollment-tokens", { tags: ["neg"] });
const etokRevoke = await mk("/api/enrollment-tokens", {});
const etokRegister = await mk("/api/enrollment-tokens", {});
const reg = await http("POST", "/api/peers/register", { body: { token: etokPeer.token, public_key: agentKey(), name: "neg-" + uniq } });
if (reg.status !== 201) throw new Error(`fixture peer: ${reg.status} ${reg.text}`);
const peer = reg.json;
// Gateways (docs/GATEWAY.md): a gateway, a site, a resource with a target.
const gw = await mk("/api/v1/gateways", { name: "neg-" + uniq });
const site = await mk("/api/v1/sites", { name: "neg-" + uniq, networks: ["10.66.0.0/24"] });
const res = await mk("/api/v1/resources", { gateway_id: gw.id, site_id: site.id, domain: `neg-${uniq}.example.com` });
const target = await mk(`/api/v1/resources/${res.id}/targets`, { address: "10.66.0.2:80" });
// A service (secureguard expose): an expose network with its hub, a gateway that takes services.
const xnet = await mk("/api/networks", { name: "neg-x-" + uniq, subnet4: "10.167.0.0/24" });
await mk("/api/clients", { network_id: xnet.id, name: "hub", is_relay: true, endpoint: "192.0.2.1:51820" });
const xgw = await mk("/api/v1/gateways", { name: "neg-x-" + uniq, public_address: "192.0.2.1",
  expose: { network_id: xnet.id, domain: `neg-${uniq}.example.com` } });
const svc = await mk("/api/v1/services", { protocol: "http", local_address: "localhost:3000", gateway_id: xgw.id });
const ids = {
  "/api/users/{id}": user.id, "/api/users/{id}/totp": user.id, "/api/api-keys/{id}": key.id, "/api/networks/{id}": net.id,
  "/api/networks/{id}/peers": net.id, "/api/clients/{id}": client.id,
  "/api/clients/{id}/config": client.id, "/api/clients/{id}/regenerate-keys": client.id,
  "/api/temp-access/{token}": grant.token,
  "/api/policies/{id}": policy.id, "/api/enrollment-tokens/{id}": etokRevoke.id,
  "/api/peers/{id}": peer.id, "/api/peers/{id}/status": peer.id, "/api/peers/{id}/config": peer.id,
  "/api/tunnels/{name}": "neg-tunnel",
  "/api/v1/gateways/{id}": gw.id, "/api/v1/gateways/{id}/config": gw.id,
  "/api/v1/gateways/{id}/enrollment-token": gw.id, "/api/v1/gateways/{id}/events": gw.id,
  "/api/v1/sites/{id}": site.id,
  "/api/v1/resources/{id}": res.id, "/api/v1/resources/{id}/targets": res.id,
  "/api/v1/targets/{id}": target.id,
  "/api/v1/services/{id}": svc.id,
  // A session needs an owner with TOTP: an id of none (every refusal here comes first).
  "/api/vpn-sessions/{id}": crypto.randomUUID(),
  // A passkey needs a WebAuthn ceremony: an id of none (every refusal here comes first).
  "/api/auth/passkeys/{id}": crypto.randomUUID(),
  "/api/users/{id}/passkeys": user.id,
};
// What a GET shows of the resource a write would change (to prove nothing changed).
const readback = {
  "/api/users/{id}": `/api/users/${user.id}`, "/api/users/{id}/totp": `/api/users/${user.id}`,
  "/api/users/{id}/passkeys": `/api/users/${user.id}`,
  "/api/networks/{id}": `/api/networks/${net.id}`,
  "/api/clients/{id}": `/api/clients/${client.id}`, "/api/settings": "/api/settings",
  "/api/clients/{id}/regenerate-keys": `/api/clients/${client.id}`,
  "/api/policies/{id}": `/api/policies/${policy.id}`, "/api/peers/{id}": `/api/peers/${peer.id}`,
  "/api/v1/gateways/{id}/config": `/api/v1/gateways/${gw.id}`, "/api/v1/sites/{id}": `/api/v1/sites/${site.id}`,
  "/api/v1/resources/{id}": `/api/v1/resources/${res.id}`, "/api/v1/resources/{id}/targets": `/api/v1/resources/${res.id}`,
  "/api/v1/targets/{id}": `/api/v1/targets/${target.id}`,
  "/api/v1/services/{id}": `/api/v1/services/${svc.id}`,
};

// ---- baseline bodies: valid, so that one mutation is the only fault ------------------------
const WG = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const baseline = {
  login: { email: "nobody@example.com", password: "x" },
  refreshTokens: { refresh_token: "sgr_notatoken" },
  logout: { refresh_token: refreshTok },
  clientChallenge: {},
  clientAuth: { public_key: WG, challenge: "A".repeat(43), proof: "A".repeat(64) },
  createUser: { email: `b-${uniq}@example.com`, password: "another long one", role: "viewer", enabled: true },
  updateUser: { email: `c-${uniq}@example.com`, password: "another long one", role: "viewer", enabled: true, unlock: false },
  createApiKey: { name: "k", role: "viewer", expires_in_days: 5 },
  createNetwork: { name: "n-" + uniq, subnet4: "10.78.0.0/24", subnet6: "fd00:78::/64", dns_servers: ["10.78.0.1"], fips_required: true, mtu: 1420 },
  updateNetwork: { name: "m-" + uniq, dns_servers: ["10.77.0.1"], fips_required: true, mtu: 1420 },
  createClient: { network_id: net.id, name: "b", description: "d", public_key: WG, public_key_fips: null, allowed_ips: ["10.77.0.0/24"], persistent_keepalive: 25, is_relay: false, endpoint: null, listen_port: null, enabled: true },
  updateClient: { name: "b", description: "d", allowed_ips: ["10.77.0.0/24"], persistent_keepalive: 25, is_relay: false, endpoint: "vpn.example.com:51820", listen_port: 51820, enabled: true },
  regenerateClientKeys: { public_key: WG, public_key_fips: null },
  createTempAccess: { network_id: net.id, duration_seconds: 3600, max_uses: 1, allowed_ips: ["10.77.0.0/24"], name: "g" },
  reportConnection: { client_id: client.id, event: "connect", source_ip: "192.0.2.1", source_port: 5, crypto_mode: "fips", bytes_sent: 1, bytes_received: 1, packets_sent: 1, packets_received: 1, session_duration_ms: 1, disconnect_reason: "x" },
  updateSettings: { instance_name: "x", admin_email: "a@example.com", fips_required: true, allow_classic_fallback: true },
  createPolicy: { name: "b-" + uniq, description: "d", enabled: true, priority: 10, applies_to: ["neg"], topology: null, tunnels: [TUNNEL] },
  updatePolicy: { name: "neg-" + uniq, description: "e", enabled: true, priority: 10, applies_to: ["neg"], topology: null, tunnels: [TUNNEL] },
  createEnrollmentToken: { name: "n", tags: ["a"], client_id: null, expires_in_hours: 1 },
  registerPeer: { token: etokRegister.token, public_key: agentKey(), name: "r-" + uniq, hostname: "h", platform: "linux", version: "1", interface: "wg0", address: "192.0.2.5", subnets: ["10.5.0.0/16"], backends: ["strongswan"] },
  agentAuth: { public_key: WG, challenge: "A".repeat(43), proof: "A".repeat(64) },
  updatePeer: { name: "neg-" + uniq, tags: ["neg"], address: "192.0.2.9", subnets: ["10.9.0.0/16"], client_id: null, interface: "wg1" },
  reportPeerStatus: { state: "ok", revision: "r", version: "1", platform: "linux", backends: ["strongswan"], tunnels: [], wireguard: [], errors: [],
    gateway: { serial: 1, connections: 0, config_rejected: 0, resources: [] } },
  createGateway: { name: "g-" + uniq, region: "eu", public_address: "edge.example.com", limits: { max_conns: 100 }, enrollment_expires_in_hours: 1 },
  updateGatewayConfig: { name: "neg-" + uniq, region: "eu", public_address: "edge.example.com", limits: { max_conns: 100 } },
  createGatewayEnrollmentToken: { enrollment_expires_in_hours: 1 },
  createSite: { name: "s-" + uniq, description: "d", networks: ["10.67.0.0/24"] },
  updateSite: { name: "neg-" + uniq, description: "d", networks: ["10.66.0.0/24"] },
  createResource: { gateway_id: gw.id, site_id: site.id, name: "r", protocol: "http", domain: `b-${uniq}.example.com`, aliases: [`c-${uniq}.example.com`],
    port: null, auth: "public", api_keys: ["0".repeat(96)], oidc: null, rate_limit: { per_source: { rate: 1, burst: 2 } },
    rules: [{ path: "/x", action: "deny" }], allow: ["10.0.0.0/8"], deny: ["10.1.0.0/16"], lb: "weighted", sticky_cookie: "s",
    max_body: 100, tls: null, max_conns: 10, idle_timeout_ms: 1000, connect_timeout_ms: 1000, response_timeout_ms: 1000,
    retries: 1, eject_ms: 1000, eject_after: 1, enabled: true },
  updateResource: { site_id: site.id, name: "r", protocol: "http", domain: `neg-${uniq}.example.com`, aliases: [], port: null, auth: "public",
    api_keys: [], oidc: null, rate_limit: null, rules: null, allow: [], deny: [], lb: null, sticky_cookie: null, max_body: null, tls: null,
    max_conns: null, idle_timeout_ms: null, connect_timeout_ms: null, response_timeout_ms: null, retries: null, eject_ms: null,
    eject_after: null, enabled: true },
  createTarget: { address: "10.66.0.3:80", weight: 2, region: "eu", health_check: { type: "tcp", interval_ms: 1000 } },
  authorizeLogin: { response_type: "code", client_id: res.id, redirect_uri: "https://x.example.com/.sg/oidc/callback", scope: "openid",
    state: "s", nonce: "n", code_challenge: "A".repeat(43), code_challenge_method: "S256", email: "nobody@example.com", password: "x" },
  token: { grant_type: "authorization_code", code: "sgc_x", redirect_uri: "https://x.example.com/.sg/oidc/callback", client_id: res.id,
    code_verifier: "A".repeat(43) },
  updateTarget: { address: "10.66.0.2:80", weight: 1, region: null, health_check: null },
  openVpnSession: { client: "neg-client", email: "nobody@example.com", password: "x", code: "123456", duration_seconds: 60 },
  openVpnSessionOidc: { client: "neg-client", oidc_code: "sgc_x", code_verifier: "A".repeat(43),
    redirect_uri: "http://127.0.0.1:5000/callback", nonce: "n", duration_seconds: 60 },
  endVpnSession: { session_token: "sgv_notatoken" },
};

// ---- invalid values per schema ----------------------------------------------------------------
function wrongTypes(s) {
  const all = { string: "x", integer: 7, boolean: true, array: ["x"], object: { a: 1 } };
  return Object.entries(all).filter(([t]) => t !== s.type && !(t === "integer" && s.type === "number")).map(([t, v]) => [`a ${t}`, v]);
}
function invalidValues(s) {
  const out = [...wrongTypes(s)];
  if (!s.nullable) out.push(["null", null]);
  if (s.type === "string") {
    if (s.enum) out.push(["not in the enum", "not-one-of-them"]);
    if (s.maxLength) out.push(["too long", "a".repeat(s.maxLength + 1)]);
    if (s.minLength) out.push(["too short", "a".repeat(s.minLength - 1)]);
    if (s.format === "uuid") out.push(["not a uuid", "not-a-uuid"]);
    if (s.format && customFormats.includes(s.format) && !["password", "text", "name"].includes(s.format))
      out.push([`not a ${s.format}`, "#bad#", "custom"]);
    if (!s.enum && s.format !== "password") out.push(["a control character", "a\u0001b"]);
    if (s.format === "text" || s.format === "name")
      out.push(["a bidi override", "a\u202eb", "custom"], ["a zero-width space", "a\u200bb", "custom"]);
    if (s.format === "name") out.push(["a leading space", " a", "custom"], ["only spaces", "   ", "custom"]);
  }
  if (s.type === "integer") {
    if (s.minimum !== undefined) out.push(["below the minimum", s.minimum - 1]);
    if (s.maximum !== undefined) out.push(["above the maximum", s.maximum + 1]);
    out.push(["a fraction", 1.5], ["huge", 1e30]);
  }
  if (s.type === "array") {
    if (s.maxItems) out.push(["too many items", Array(s.maxItems + 1).fill(s.items.type === "string" ? "10.0.0.0/8" : 1)]);
    if (s.items) for (const [w, v, c] of invalidValues(s.items).filter(([w]) => w !== "null"))
      out.push([`an item ${w}`, [v], c]);
  }
  return out;
}
function paramValues(s) {
  const out = [["empty", ""], ["NUL", "a%00b"], ["not UTF-8", "%FF"], ["5000 characters", "a".repeat(5000)]];
  if (s.type === "integer") {
    out.push(["not a number", "abc"], ["a fraction", "1.5"], ["leading +", "+1"], ["leading zero", "01"]);
    if (s.minimum !== undefined) out.push(["below the minimum", String(s.minimum - 1)]);
    if (s.maximum !== undefined) out.push(["above the maximum", String(s.maximum + 1)]);
  }
  if (s.type === "boolean") out.push(["1", "1"], ["yes", "yes"], ["TRUE", "TRUE"]);
  if (s.type === "string" && s.enum) out.push(["not in the enum", "nope"]);
  if (s.type === "string" && s.format === "uuid") out.push(["not a uuid", "not-a-uuid"]);
  return out;
}

async function auditHead() {
  const r = await http("GET", "/api/audit?limit=1", { token: tok });
  return r.json && r.json.items[0] ? r.json.items[0].id : 0;
}

async function expectRefused(what, op, method, path, req, field, readPath) {
  cases++;
  const before = readPath ? (await http("GET", readPath, { token: tok })).text : null;
  const head0 = method === "GET" || method === "HEAD" ? 0 : await auditHead();
  const r = await http(method, path, req);
  if (r.status < 400 || r.status >= 500) {
    fail(`${op} ${what}: answered ${r.status} ${r.text.slice(0, 160)}`);
    return;
  }
  if (method !== "HEAD") {
    if (!r.ctype.startsWith("application/problem+json") || !r.json || r.json.status !== r.status ||
        typeof r.json.detail !== "string" || r.json.type !== "about:blank")
      fail(`${op} ${what}: ${r.status} is not a problem document: ${r.ctype} ${r.text.slice(0, 160)}`);
    else if (field && r.json.field !== field && r.status === 400)
      fail(`${op} ${what}: 400 names field ${r.json.field}, not ${field}: ${r.json.detail}`);
    const st = doc.paths[pathKey(op)][method.toLowerCase()].responses[String(r.status)];
    if (!st) fail(`${op} ${what}: status ${r.status} is not documented`);
  }
  if (method !== "GET" && method !== "HEAD") {
    const head1 = await auditHead();
    if (head1 !== head0) fail(`${op} ${what}: the audit log moved (${head0} -> ${head1}): something changed`);
  }
  if (readPath) {
    const after = (await http("GET", readPath, { token: tok })).text;
    if (after !== before) fail(`${op} ${what}: ${readPath} changed`);
  }
}

const opPaths = {};
function pathKey(opId) {
  return opPaths[opId];
}

for (const [tpl, item] of Object.entries(doc.paths)) {
  for (const [m, op] of Object.entries(item)) {
    const method = m.toUpperCase();
    opPaths[op.operationId] = tpl;
    const open = !op.security || op.security.length === 0;
    const token = open ? undefined : tok;
    const pathOf = (over) => tpl.replace(/\{([^}]+)\}/g, (x, name) =>
      over && over[name] !== undefined ? over[name] : encodeURIComponent(ids[tpl]));
    const readPath = readback[tpl] && method !== "GET" && method !== "HEAD" ? readback[tpl] : null;
    const params = op.parameters || [];
    const base = baseline[op.operationId];
    const form = op.requestBody && op.requestBody.content["application/x-www-form-urlencoded"];
    const bodySchema = op.requestBody && (form || op.requestBody.content["application/json"]).schema;
    const bodyOk = base ? JSON.stringify(base) : undefined;
    const withBody = bodySchema ? { body: base || {} } : {};

    if (bodySchema && base && !ajv.validate(bodySchema, base))
      fail(`${op.operationId}: the test's baseline body is invalid per the document: ${ajv.errorsText()}`);

    // Path parameters.
    for (const p of params.filter((p) => p.in === "path")) {
      for (const [w, v] of [["not a uuid / token", "x!"], ["NUL", "%00"], ["not UTF-8", "%FF"],
        ["a dot segment", ".."], ["5000 characters", "a".repeat(5000)]])
        await expectRefused(`path ${p.name} ${w}`, op.operationId, method,
          pathOf({ [p.name]: v }), { ...withBody, token }, null, readPath);
    }
    // Query parameters.
    for (const p of params.filter((p) => p.in === "query")) {
      for (const [w, v] of paramValues(p.schema))
        await expectRefused(`query ${p.name} ${w}`, op.operationId, method,
          `${pathOf()}?${p.name}=${v}`, { ...withBody, token }, p.name, readPath);
      await expectRefused(`query ${p.name} without =`, op.operationId, method,
        `${pathOf()}?${p.name}`, { ...withBody, token }, p.name, readPath);
      const good = p.schema.type === "integer" ? String(p.schema.minimum ?? 1)
        : p.schema.type === "boolean" ? "true" : p.schema.enum ? p.schema.enum[0]
          : p.schema.format === "uuid" ? net.id : "x";
      await expectRefused(`query ${p.name} twice`, op.operationId, method,
        `${pathOf()}?${p.name}=${good}&${p.name}=${good}`, { ...withBody, token }, p.name, readPath);
    }
    await expectRefused("an unknown query parameter", op.operationId, method,
      `${pathOf()}?surely_not=1`, { ...withBody, token }, "surely_not", readPath);

    if (form) {
      // A form (the OpenID provider's): strings only, framed as browsers and OAuth clients do.
      const enc = (o) => new URLSearchParams(o).toString();
      const FT = "application/x-www-form-urlencoded";
      for (const [w, ct] of [["JSON", "application/json"], ["text/plain", "text/plain"],
        ["multipart", "multipart/form-data; boundary=x"], ["no Content-Type", null],
        ["a charset other than UTF-8", FT + "; charset=latin1"]])
        await expectRefused(`Content-Type ${w}`, op.operationId, method, pathOf(),
          { raw: base ? enc(base) : "a=b", ctype: ct, token }, null, readPath);
      if (op.requestBody.required)
        await expectRefused("an empty body", op.operationId, method, pathOf(), { raw: "", ctype: FT, token }, null, readPath);
      for (const [w, raw] of [["a field twice", "a=1&a=2"], ["a bad escape", "a=%zz"], ["no =", "a"],
        ["an escaped NUL", "a=x%00y"], ["not UTF-8", "a=%FF"], ["an empty name", "=1"]])
        await expectRefused(`form ${w}`, op.operationId, method, pathOf(),
          { raw: base ? enc(base) + "&" + raw : raw, ctype: FT, token }, null, readPath);
      if (!base) continue;
      await expectRefused("an unknown field", op.operationId, method, pathOf(),
        { raw: enc({ ...base, surely_not: "1" }), ctype: FT, token }, "surely_not", readPath);
      for (const req of bodySchema.required || []) {
        const b = { ...base };
        delete b[req];
        await expectRefused(`without ${req}`, op.operationId, method, pathOf(), { raw: enc(b), ctype: FT, token }, req, readPath);
      }
      for (const [name, ps] of Object.entries(bodySchema.properties || {})) {
        for (const [w, v] of invalidValues(ps).filter(([, v]) => typeof v === "string")) {
          await expectRefused(`${name} ${w}`, op.operationId, method, pathOf(),
            { raw: enc({ ...base, [name]: v }), ctype: FT, token }, name, readPath);
        }
      }
      continue;
    }
    if (!bodySchema) {
      if (method !== "GET" && method !== "HEAD")
        await expectRefused("a body where none is taken", op.operationId, method, pathOf(),
          { raw: "{}", token }, null, readPath);
      continue;
    }
    // Content-Type and framing of the body.
    for (const [w, ct] of [["text/plain", "text/plain"], ["a form", "application/x-www-form-urlencoded"],
      ["multipart", "multipart/form-data; boundary=x"], ["XML", "application/xml"], ["no Content-Type", null],
      ["a charset other than UTF-8", "application/json; charset=latin1"]])
      await expectRefused(`Content-Type ${w}`, op.operationId, method, pathOf(),
        { raw: bodyOk || "{}", ctype: ct, token }, null, readPath);
    if (op.requestBody.required)
      await expectRefused("an empty body", op.operationId, method, pathOf(), { raw: "", token }, null, readPath);
    for (const [w, raw] of [["not JSON", "{"], ["an array", "[]"], ["not UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
      ["an escaped NUL", '{"x":"a\\u0000b"}'], ["a duplicate key", bodyOk ? bodyOk.replace(/^\{/, '{"' + Object.keys(base)[0] + '":1,') : '{"a":1,"a":2}']])
      await expectRefused(`body ${w}`, op.operationId, method, pathOf(), { raw, token }, null, readPath);
    if (!base) continue;
    await expectRefused("an unknown field", op.operationId, method, pathOf(),
      { body: { ...base, surely_not: 1 }, token }, "surely_not", readPath);
    for (const req of bodySchema.required || []) {
      const b = { ...base };
      delete b[req];
      await expectRefused(`without ${req}`, op.operationId, method, pathOf(), { body: b, token }, req, readPath);
    }
    if (bodySchema.minProperties)
      await expectRefused("an empty object", op.operationId, method, pathOf(), { body: {}, token }, null, readPath);
    for (const [name, ps] of Object.entries(bodySchema.properties || {})) {
      for (const [w, v, custom] of invalidValues(ps)) {
        const b = { ...base, [name]: v };
        if (!custom && ajv.validate(bodySchema, b)) {
          fail(`${op.operationId} ${name} ${w}: the document allows ${JSON.stringify(v).slice(0, 60)}`);
          continue;
        }
        await expectRefused(`${name} ${w}`, op.operationId, method, pathOf(), { body: b, token }, name, readPath);
      }
    }
  }
}

// Tidy up what the fixtures made (not audited as a test result).
await http("DELETE", `/api/networks/${net.id}`, { token: tok });
await http("DELETE", `/api/users/${user.id}`, { token: tok });
await http("DELETE", `/api/api-keys/${key.id}`, { token: tok });
await http("DELETE", `/api/policies/${policy.id}`, { token: tok });
await http("DELETE", `/api/peers/${peer.id}`, { token: tok });
await http("DELETE", `/api/v1/gateways/${gw.id}`, { token: tok });
await http("DELETE", `/api/v1/sites/${site.id}`, { token: tok });
await http("DELETE", `/api/v1/gateways/${xgw.id}`, { token: tok });
await http("DELETE", `/api/networks/${xnet.id}`, { token: tok });
console.log(`[negative] ${cases} invalid requests, ${fails.length} failures`);
process.exit(fails.length ? 1 : 0);
