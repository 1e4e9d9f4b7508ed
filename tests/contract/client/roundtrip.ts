// A client generated from docs/openapi.json (openapi-typescript types + openapi-fetch), driving
// one round trip: log in, create a network, find it in the list, delete it, see it gone. It
// must compile under `tsc --strict`: if the document's types were wrong for the server, this
// would not type-check or would fail at run time.
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

const url = process.env.SG_URL!;
const email = process.env.SG_EMAIL!;
const password = process.env.SG_PASSWORD!;
const api = createClient<paths>({ baseUrl: url });

function must<T>(what: string, v: T | undefined, status: number): T {
  if (v === undefined) throw new Error(`${what}: HTTP ${status}`);
  return v;
}

const login = await api.POST("/api/auth/login", { body: { email, password } });
const answer = must("login", login.data, login.response.status);
// A login answers tokens, or (the account has a second factor) a challenge: the type says so.
if ("mfa_required" in answer) throw new Error("login: this account needs a second factor");
const tokens = answer;
const headers = { Authorization: `Bearer ${tokens.access_token}` };
const name = `ts-client-${Date.now()}`;

const created = await api.POST("/api/networks", {
  body: { name, subnet4: "10.99.0.0/24", dns_servers: ["10.99.0.1"], fips_required: true },
  headers,
});
const net = must("create network", created.data, created.response.status);
if (created.response.status !== 201 || net.name !== name || net.client_count !== 0)
  throw new Error(`create network: unexpected answer ${JSON.stringify(net)}`);

const listed = await api.GET("/api/networks", { params: { query: { limit: 500, offset: 0 } }, headers });
const page = must("list networks", listed.data, listed.response.status);
if (!page.items.some((n) => n.id === net.id) || page.limit !== 500 || page.offset !== 0)
  throw new Error("list networks: the new network is not listed");

const deleted = await api.DELETE("/api/networks/{id}", { params: { path: { id: net.id } }, headers });
if (deleted.response.status !== 204) throw new Error(`delete network: HTTP ${deleted.response.status}`);

const gone = await api.GET("/api/networks/{id}", { params: { path: { id: net.id } }, headers });
if (gone.response.status !== 404 || gone.error?.status !== 404 || typeof gone.error.detail !== "string")
  throw new Error(`deleted network: expected a 404 problem document, got ${gone.response.status}`);

console.log(`[ts-client] login, create, list, delete, 404 after: ok (network ${net.id})`);
