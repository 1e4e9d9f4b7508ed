/* The management server's API described once, in C (api_spec.c): every route with its method,
 * path, role, parameters, body and answers, and every schema. From this one description come
 * the server's input validation (api_valid.c, run before any handler) and the OpenAPI 3 document
 * (api_doc.c, served at /api/openapi.json and written to docs/openapi.json by
 * `secureguard openapi`). So the document and the server cannot disagree: a rule the server
 * enforces on input is a property of a schema here (a type, a range, a length, an enum, or a
 * named format whose checker is below and whose rule the format's description states), and a
 * status a handler answers is listed in its route's responses. */
#ifndef SG_SERVER_API_H
#define SG_SERVER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/srv_int.h"

enum api_type { AT_STRING, AT_INTEGER, AT_BOOLEAN, AT_ARRAY, AT_OBJECT, AT_ANY };

/* A string format: its OpenAPI name, what it means (goes into the document), and its checker
 * (NULL: documentation only, e.g. uuid is checked by its own code). The checker gets a valid
 * UTF-8 string and sets *why to a reason for the user. */
struct api_format {
	const char *name;
	const char *description;
	bool (*check)(const char *s, const char **why);
	/* The stored form of a value (malloc'd; NULL: keep it), applied before the check. */
	char *(*normalize)(const char *s);
};

struct api_prop;

struct api_schema {
	const char *name; /* a component (#/components/schemas/NAME), or NULL inline */
	enum api_type type;
	const char *description;
	bool nullable;
	/* AT_STRING: lengths in characters (code points); 0 = no bound, except min_len 0 means
	 * the empty string is allowed only when allow_empty. */
	int min_len, max_len;
	bool allow_empty;
	const struct api_format *format;
	const char *const *enumv; /* NULL-terminated */
	/* AT_INTEGER */
	bool has_min, has_max;
	int64_t min, max;
	const char *int_format; /* "int32" / "int64" */
	/* AT_ARRAY */
	const struct api_schema *items;
	int max_items;
	/* Documentation of answers only (not validated on input): one of these schemas,
	 * NULL-terminated (OpenAPI oneOf). */
	const struct api_schema *const *one_of;
	/* AT_OBJECT */
	const struct api_prop *props;
	int nprops;
	bool open;     /* additionalProperties allowed (only AT_ANY-like documents) */
	int min_props; /* at least this many properties (updates: 1, else nothing to do) */
	/* Documentation. */
	const char *default_json; /* the default when absent, as JSON text */
	const char *example_json;
};

/* Property flags. */
enum {
	P_REQUIRED = 1, /* input: must be present; output: always present */
};

struct api_prop {
	const char *name;
	const struct api_schema *schema;
	unsigned flags;
	const char *description; /* overrides the schema's, for this use */
};

enum api_in { IN_PATH, IN_QUERY };

struct api_param {
	const char *name;
	enum api_in in;
	const struct api_schema *schema;
	bool required;
	const char *description;
};

struct api_response {
	int status;
	const char *description;
	const char *ctype;		  /* NULL: no body */
	const struct api_schema *schema;  /* body schema for ctype */
	const char *ctype2;		  /* a second representation (config text / QR PNG) */
	const struct api_schema *schema2;
};

/* Route authentication flags. AUTH_AGENT_OK: an agent's session may call it too (the handler
 * limits it to the agent's own resources); AUTH_AGENT_ONLY: only an agent's session. */
enum {
	AUTH_PUBLIC = 1,
	AUTH_CLIENT_OK = 2,
	AUTH_USER_ONLY = 4,
	AUTH_AGENT_OK = 8,
	AUTH_AGENT_ONLY = 16,
	/* Open to a user who must still enrol a second factor (the instance requires one). */
	AUTH_MFA_SETUP = 32
};

struct api_route {
	const char *method;	  /* GET POST PUT DELETE HEAD */
	const char *path;	  /* OpenAPI form: /api/users/{id} */
	const char *operation_id; /* camelCase, unique */
	const char *tag;
	const char *summary;
	const char *description;
	srv_handler fn; /* NULL: built in (health, metrics, openapi) */
	enum srv_role min_role;
	int flags;
	const struct api_param *params;
	int nparams;
	const struct api_schema *body; /* NULL: takes no body */
	bool body_required;
	bool body_form; /* the body is application/x-www-form-urlencoded (strings), not JSON */
	const struct api_response *responses;
	int nresponses;
};

extern const struct api_route api_routes[];
extern const size_t api_nroutes;
/* Every named schema, in document order. */
extern const struct api_schema *const api_components[];
extern const size_t api_ncomponents;
/* Tags in document order: name and description pairs, NULL-terminated. */
extern const char *const api_tags[][2];

/* The Error schema (RFC 9457 problem document). */
extern const struct api_schema api_problem;

/* ---- validation (api_valid.c) ---- */
/* Path and query parameters of r against route: unknown, malformed or out-of-range values are
 * 400 naming the parameter. */
bool api_check_params(const struct api_route *route, struct srv_req *r, struct srv_resp *out);
/* The parsed body r->json against route->body (types, required, unknown fields, ranges,
 * lengths, enums, formats); 400 naming the field (a dotted path: "dns_servers[2]"). */
bool api_check_body(const struct api_route *route, struct srv_req *r, struct srv_resp *out);
/* A query parameter's value as an integer, or its documented default when absent (the route
 * must declare it: validated before the handler runs). */
int64_t api_query_int(const struct api_route *route, struct srv_req *r, const char *name);
/* The same for a boolean: 1, 0, or -1 when absent without a default. */
int api_query_bool(const struct api_route *route, struct srv_req *r, const char *name);

/* Number of code points of valid UTF-8. */
size_t api_utf8_len(const char *s);

/* ---- the document (api_doc.c) ---- */
/* The OpenAPI 3.0.3 document, pretty-printed with two spaces and a final newline, as
 * docs/openapi.json holds it (malloc'd). */
char *api_openapi_text(void);

#endif
