// The management server against its document, judged by tools nobody here wrote:
// @apidevtools/swagger-parser checks that docs/openapi.json is a valid OpenAPI 3 document, and
// ajv checks every recorded response (status, Content-Type, body schema) against it.
//
//   node validate.mjs --doc docs/openapi.json [--traffic FILE.jsonl ...] [--all-operations]
//
// A traffic file has one JSON object per response, as tests/server/api_test.py records them
// (SG_API_RECORD): {"m": method, "p": path with query, "s": status, "ct": Content-Type,
// "b": body text or null when binary}. --all-operations also fails when an operation of the
// document was never exercised. Exit status 0 when everything conforms.
import fs from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";

function parseArgs(argv) {
  const a = { traffic: [], all: false };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === "--doc") a.doc = argv[++i];
    else if (argv[i] === "--traffic") a.traffic.push(argv[++i]);
    else if (argv[i] === "--all-operations") a.all = true;
    else throw new Error("unknown argument " + argv[i]);
  }
  if (!a.doc) throw new Error("--doc is required");
  return a;
}

const args = parseArgs(process.argv);
const fails = [];
const fail = (msg) => {
  fails.push(msg);
  if (fails.length <= 40) console.log("[contract] FAIL: " + msg);
};

// 1. The document itself.
let api;
try {
  api = await SwaggerParser.validate(structuredClone(JSON.parse(fs.readFileSync(args.doc, "utf8"))));
} catch (e) {
  console.log("[contract] FAIL: the document is not valid OpenAPI 3: " + e.message);
  process.exit(1);
}
console.log(`[contract] ${args.doc}: valid OpenAPI ${api.openapi}, ` +
  `${Object.keys(api.paths).length} paths`);

// 2. A validator per response schema. The document's own formats are names with a stated rule
// (checked by the server on input); for responses only the standard ones are checked here.
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
for (const f of ["text", "ipv4-subnet", "ipv6-subnet", "cidr", "ip", "endpoint", "wireguard-key",
  "fips-key", "challenge", "proof", "refresh-token", "temp-access-ref", "password", "binary",
  "wg-config", "pem", "name", "domain", "ip-port", "sha384-hex"])
  ajv.addFormat(f, true);

const ops = [];
for (const [path, item] of Object.entries(api.paths)) {
  const re = new RegExp("^" + path.replace(/\{[^}]+\}/g, "[^/]+") + "/?$");
  for (const [method, op] of Object.entries(item)) {
    if (!["get", "put", "post", "delete", "head", "patch"].includes(method)) continue;
    ops.push({ path, re, method: method.toUpperCase(), op, seen: 0 });
  }
}
const problemSchema = api.components.schemas.Problem;
const validators = new Map();
function validator(schema) {
  if (!validators.has(schema)) validators.set(schema, ajv.compile(schema));
  return validators.get(schema);
}

function mediaType(ct) {
  return (ct || "").split(";")[0].trim().toLowerCase();
}

function checkBody(what, schema, rec) {
  if (rec.b === null || rec.b === undefined) return; // binary: its type was checked
  let v;
  try {
    v = JSON.parse(rec.b);
  } catch (e) {
    fail(`${what}: body is not JSON: ${rec.b.slice(0, 120)}`);
    return;
  }
  const val = validator(schema);
  if (!val(v))
    fail(`${what}: body does not match the schema: ` +
      ajv.errorsText(val.errors, { separator: "; " }).slice(0, 400) +
      " -- " + rec.b.slice(0, 200));
}

// 3. Every recorded response.
let n = 0;
for (const file of args.traffic) {
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line);
    n++;
    const path = rec.p.split("?")[0];
    const what = `${rec.m} ${rec.p.slice(0, 100)} -> ${rec.s}`;
    let cand = ops.filter((o) => o.re.test(path) && o.method === rec.m);
    if (!cand.length && rec.m === "HEAD")
      cand = ops.filter((o) => o.re.test(path) && o.method === "GET");
    // The most specific template: fewest parameters.
    cand.sort((a, b) => (a.path.match(/\{/g) || []).length - (b.path.match(/\{/g) || []).length);
    const o = cand[0];
    if (!o) {
      // Not an operation (unknown path, wrong method): still the documented error shape.
      if (rec.s < 400) fail(`${what}: success for a request the document does not have`);
      else if (rec.m !== "HEAD") {
        if (mediaType(rec.ct) !== "application/problem+json")
          fail(`${what}: error with Content-Type ${rec.ct}`);
        checkBody(what, problemSchema, rec);
      }
      continue;
    }
    o.seen++;
    const resp = o.op.responses[String(rec.s)];
    if (!resp) {
      fail(`${what}: status ${rec.s} is not documented for ${o.method} ${o.path}`);
      continue;
    }
    if (!resp.content || rec.m === "HEAD") {
      if (rec.m !== "HEAD" && rec.b) fail(`${what}: a body where the document has none`);
      continue;
    }
    const types = Object.keys(resp.content);
    const got = types.find((t) => mediaType(t) === mediaType(rec.ct));
    if (!got) {
      fail(`${what}: Content-Type ${rec.ct} is not one of ${types.join(", ")}`);
      continue;
    }
    if (got.toLowerCase().replace(/ /g, "") !== (rec.ct || "").toLowerCase().replace(/ /g, ""))
      fail(`${what}: Content-Type ${rec.ct} differs from the documented ${got}`);
    const mt = mediaType(got);
    if (mt === "application/json" || mt === "application/problem+json")
      checkBody(what, resp.content[got].schema, rec);
  }
}
console.log(`[contract] ${n} responses checked against the document`);

if (args.all) {
  for (const o of ops)
    if (!o.seen) fail(`operation ${o.op.operationId} (${o.method} ${o.path}) was never exercised`);
  console.log(`[contract] ${ops.filter((o) => o.seen).length} of ${ops.length} operations exercised`);
}
if (fails.length) {
  console.log(`[contract] ${fails.length} failures`);
  process.exit(1);
}
console.log("[contract] every response conforms");
