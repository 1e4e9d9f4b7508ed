/* The OpenAPI 3.0.3 document, made from the API description (api.h). Its text is stable (keys
 * in the order they are set here, two-space indent), so docs/openapi.json can be checked equal
 * to it byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "server/api.h"

static const char info_description[] =
    "The SecureGuard management server (docs/SERVER.md). Every error is an RFC 9457 problem "
    "document (application/problem+json) with type, title, status, detail and, when one input "
    "is at fault, field. Bodies are application/json (charset utf-8 if given), else 415; a "
    "route whose body is required answers 400 without one. Query parameters are decoded once, "
    "strictly: unknown, repeated, without '=', with an encoded NUL or bytes that are not UTF-8: "
    "400 naming the parameter. Bodies larger than the limit are 413 (1 MiB, 8 KiB on routes "
    "open without credentials), nested deeper than 32 levels or with more than 10000 values "
    "400. Credentials are checked before the body is read as JSON. x-min-role names the least "
    "role a route needs (super_admin > admin > viewer; agent: only a managed node's session). "
    "Every list answers items, total, limit "
    "and offset, and takes the limit and offset parameters.";

static json_t *schema_json(const struct api_schema *sc, bool as_ref, const char *desc);

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

/* A JSON text from the description (defaults, examples): it is ours, so it parses. */
static void set_json_text(json_t *o, const char *k, const char *text)
{
	json_t *v;

	if (!text)
		return;
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	if (v)
		json_object_set_new(o, k, v);
}

static json_t *enum_json(const struct api_schema *sc)
{
	json_t *a = json_array();

	for (const char *const *e = sc->enumv; *e; e++)
		json_array_append_new(a, json_string(*e));
	/* OpenAPI 3.0.3: a nullable enum must list null to allow it. */
	if (sc->nullable)
		json_array_append_new(a, json_null());
	return a;
}

static json_t *object_body(const struct api_schema *sc)
{
	json_t *o = json_object(), *props = json_object(), *req = json_array();

	json_object_set_new(o, "type", json_string("object"));
	set_str(o, "description", sc->description);
	for (int i = 0; i < sc->nprops; i++) {
		const struct api_prop *p = &sc->props[i];

		json_object_set_new(props, p->name, schema_json(p->schema, true, p->description));
		if (p->flags & P_REQUIRED)
			json_array_append_new(req, json_string(p->name));
	}
	if (sc->nprops)
		json_object_set_new(o, "properties", props);
	else
		json_decref(props);
	if (json_array_size(req))
		json_object_set_new(o, "required", req);
	else
		json_decref(req);
	if (sc->min_props)
		json_object_set_new(o, "minProperties", json_integer(sc->min_props));
	json_object_set_new(o, "additionalProperties", json_boolean(sc->open));
	return o;
}

static json_t *schema_json(const struct api_schema *sc, bool as_ref, const char *desc)
{
	json_t *o;

	if (sc->name && as_ref) {
		o = json_object();
		json_object_set_new(o, "$ref", json_pack("s++", "#/components/schemas/", sc->name,
							 ""));
		return o;
	}
	if (sc->one_of) {
		json_t *a = json_array();

		for (const struct api_schema *const *alt = sc->one_of; *alt; alt++)
			json_array_append_new(a, schema_json(*alt, true, NULL));
		o = json_object();
		set_str(o, "description", desc ? desc : sc->description);
		json_object_set_new(o, "oneOf", a);
		return o;
	}
	if (sc->type == AT_OBJECT) {
		o = object_body(sc);
		if (desc)
			json_object_set_new(o, "description", json_string(desc));
		if (sc->nullable)
			json_object_set_new(o, "nullable", json_true());
		return o;
	}
	o = json_object();
	switch (sc->type) {
	case AT_STRING:
		json_object_set_new(o, "type", json_string("string"));
		if (sc->format)
			set_str(o, "format", sc->format->name);
		break;
	case AT_INTEGER:
		json_object_set_new(o, "type", json_string("integer"));
		set_str(o, "format", sc->int_format);
		break;
	case AT_BOOLEAN:
		json_object_set_new(o, "type", json_string("boolean"));
		break;
	case AT_ARRAY:
		json_object_set_new(o, "type", json_string("array"));
		break;
	default:
		break;
	}
	{
		/* The use's description first, then what the format means. */
		const char *d = desc ? desc : sc->description;
		const char *f = sc->type == AT_STRING && sc->format ? sc->format->description
								    : NULL;

		if (d && f)
			json_object_set_new(o, "description", json_pack("s++", d, ". ", f));
		else
			set_str(o, "description", d ? d : f);
	}
	if (sc->nullable)
		json_object_set_new(o, "nullable", json_true());
	if (sc->type == AT_STRING) {
		if (sc->enumv) {
			json_object_set_new(o, "enum", enum_json(sc));
		} else {
			int min = sc->min_len ? sc->min_len : (sc->allow_empty ? 0 : 1);

			if (min)
				json_object_set_new(o, "minLength", json_integer(min));
			if (sc->max_len)
				json_object_set_new(o, "maxLength", json_integer(sc->max_len));
			/* What the server refuses, stated: no control character, except in a
			 * password (any character but NUL, which JSON text cannot carry here). */
			if (sc->format && !strcmp(sc->format->name, "password"))
				json_object_set_new(o, "pattern", json_string("^[^\\u0000]*$"));
			else if (!sc->format || sc->format->check)
				json_object_set_new(o, "pattern",
						    json_string("^[^\\u0000-\\u001f\\u007f]*$"));
		}
	}
	if (sc->type == AT_INTEGER) {
		if (sc->has_min)
			json_object_set_new(o, "minimum", json_integer(sc->min));
		if (sc->has_max)
			json_object_set_new(o, "maximum", json_integer(sc->max));
	}
	if (sc->type == AT_ARRAY) {
		json_object_set_new(o, "items", schema_json(sc->items, true, NULL));
		if (sc->max_items)
			json_object_set_new(o, "maxItems", json_integer(sc->max_items));
	}
	set_json_text(o, "default", sc->default_json);
	set_json_text(o, "example", sc->example_json);
	return o;
}

static json_t *param_json(const struct api_param *p)
{
	json_t *o = json_object();

	set_str(o, "name", p->name);
	set_str(o, "in", p->in == IN_PATH ? "path" : "query");
	json_object_set_new(o, "required", json_boolean(p->required));
	set_str(o, "description", p->description);
	json_object_set_new(o, "schema", schema_json(p->schema, true, NULL));
	return o;
}

static json_t *content_json(const char *ctype, const struct api_schema *sc)
{
	json_t *c = json_object();

	json_object_set_new(c, "schema", schema_json(sc, true, NULL));
	return json_pack("{s:o}", ctype, c);
}

static json_t *response_json(const struct api_response *r)
{
	json_t *o = json_object();

	set_str(o, "description", r->description);
	if (r->status == 429 || r->status == 503)
		json_object_set_new(
		    o, "headers",
		    json_pack("{s:{s:s,s:{s:s}}}", "Retry-After", "description",
			      "seconds to wait before trying again", "schema", "type", "integer"));
	if (r->ctype) {
		json_t *c = content_json(r->ctype, r->schema);

		if (r->ctype2) {
			json_t *c2 = content_json(r->ctype2, r->schema2);

			json_object_update(c, c2);
			json_decref(c2);
		}
		json_object_set_new(o, "content", c);
	}
	return o;
}

static const char *lower_method(const char *m, char buf[8])
{
	size_t i;

	for (i = 0; m[i] && i < 7; i++)
		buf[i] = (char)(m[i] >= 'A' && m[i] <= 'Z' ? m[i] + 32 : m[i]);
	buf[i] = 0;
	return buf;
}

static json_t *operation_json(const struct api_route *rt)
{
	json_t *o = json_object(), *sec = json_array();

	set_str(o, "operationId", rt->operation_id);
	json_object_set_new(o, "tags", json_pack("[s]", rt->tag));
	set_str(o, "summary", rt->summary);
	set_str(o, "description", rt->description);
	json_object_set_new(o, "x-min-role",
			    json_string((rt->flags & AUTH_AGENT_ONLY) ? "agent"
					: rt->min_role == ROLE_NONE  ? "none"
								     : srv_role_name(rt->min_role)));
	if (rt->flags & AUTH_AGENT_ONLY) {
		json_array_append_new(sec, json_pack("{s:[]}", "agentSession"));
	} else if (!(rt->flags & AUTH_PUBLIC)) {
		json_array_append_new(sec, json_pack("{s:[]}", "bearerJwt"));
		if (!(rt->flags & AUTH_USER_ONLY))
			json_array_append_new(sec, json_pack("{s:[]}", "apiKey"));
		if (rt->flags & AUTH_CLIENT_OK)
			json_array_append_new(sec, json_pack("{s:[]}", "clientSession"));
		if (rt->flags & AUTH_AGENT_OK)
			json_array_append_new(sec, json_pack("{s:[]}", "agentSession"));
	}
	json_object_set_new(o, "security", sec);
	if (rt->nparams) {
		json_t *ps = json_array();

		for (int i = 0; i < rt->nparams; i++)
			json_array_append_new(ps, param_json(&rt->params[i]));
		json_object_set_new(o, "parameters", ps);
	}
	if (rt->body)
		json_object_set_new(o, "requestBody",
				    json_pack("{s:b,s:o}", "required", rt->body_required,
					      "content",
					      content_json(rt->body_form
							       ? "application/x-www-form-urlencoded"
							       : "application/json",
							   rt->body)));
	{
		json_t *rs = json_object();

		for (int i = 0; i < rt->nresponses; i++) {
			char code[8];

			snprintf(code, sizeof(code), "%d", rt->responses[i].status);
			json_object_set_new(rs, code, response_json(&rt->responses[i]));
		}
		/* Every route that reads the database may answer 503 while it is away
		 * (srv_dberr); the routes that never touch it are the built-in three. */
		if (!json_object_get(rs, "503") && strcmp(rt->path, "/api/health") &&
		    strcmp(rt->path, "/metrics") && strcmp(rt->path, "/api/openapi.json")) {
			static const struct api_response away = {
			    503, "busy, or the database is unreachable; retry (Retry-After)",
			    "application/problem+json", &api_problem, NULL, NULL};

			json_object_set_new(rs, "503", response_json(&away));
		}
		json_object_set_new(o, "responses", rs);
	}
	return o;
}

char *api_openapi_text(void)
{
	json_t *doc = json_object(), *schemas = json_object(), *paths = json_object(),
	       *tags = json_array();
	char *text, *out;
	size_t n;

	json_object_set_new(doc, "openapi", json_string("3.0.3"));
	json_object_set_new(doc, "info",
			    json_pack("{s:s,s:s,s:s}", "title",
				      "SecureGuard management server API", "version", "1",
				      "description", info_description));
	json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", "/"));
	for (int i = 0; api_tags[i][0]; i++)
		json_array_append_new(tags, json_pack("{s:s,s:s}", "name", api_tags[i][0],
						      "description", api_tags[i][1]));
	json_object_set_new(doc, "tags", tags);
	for (size_t i = 0; i < api_ncomponents; i++)
		json_object_set_new(schemas, api_components[i]->name,
				    schema_json(api_components[i], false, NULL));
	json_object_set_new(
	    doc, "components",
	    json_pack("{s:{s:{s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}},"
		      "s:o}",
		      "securitySchemes", "bearerJwt", "type", "http", "scheme", "bearer",
		      "bearerFormat", "JWT", "description",
		      "access token from /api/auth/login (HS384)", "apiKey", "type", "http",
		      "scheme", "bearer", "description", "API key sgk_... from /api/api-keys",
		      "clientSession", "type", "http", "scheme", "bearer", "description",
		      "client session sgs_... from /api/auth/client", "agentSession", "type",
		      "http", "scheme", "bearer", "description",
		      "agent session sga_... from /api/auth/agent", "schemas", schemas));
	for (size_t i = 0; i < api_nroutes; i++) {
		const struct api_route *rt = &api_routes[i];
		json_t *item = json_object_get(paths, rt->path);
		char m[8];

		if (!item) {
			item = json_object();
			json_object_set_new(paths, rt->path, item);
		}
		json_object_set_new(item, lower_method(rt->method, m), operation_json(rt));
	}
	json_object_set_new(doc, "paths", paths);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return NULL;
	n = strlen(text);
	out = realloc(text, n + 2);
	if (!out) {
		free(text);
		return NULL;
	}
	out[n] = '\n';
	out[n + 1] = 0;
	return out;
}
