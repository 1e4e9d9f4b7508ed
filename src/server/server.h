/* The SecureGuard management server (docs/SERVER.md): `secureguard server`.
 *
 * An HTTP(S) JSON API (our HTTP/1.1 front, src/server/httpd.c; jansson), storing networks,
 * clients, admin users, temporary access grants and the audit log in SQLite or PostgreSQL
 * through server/db.h.
 */
#ifndef SG_SERVER_SERVER_H
#define SG_SERVER_SERVER_H

/* `secureguard server [--listen HOST:PORT] [--db URL] [--data-dir DIR] [--key-file F]
 * [--tls-cert F --tls-key F] ...`; argv[0] is "server". Runs until SIGTERM or SIGINT and
 * returns the process exit status (0 after a clean shutdown, 1 on a start-up error, 2 on a
 * usage error). */
int sg_server_cmd(int argc, char **argv);
/* `secureguard server backup|restore|migrate-store ...` (store.c, docs/OPERATIONS.md); argv[0]
 * is the subcommand. Returns the exit status: 0 done, 1 failed (the reason on stderr), 2 usage. */
int srv_store_cmd(int argc, char **argv);
/* `secureguard openapi`: prints the OpenAPI 3 document the server serves at /api/openapi.json
 * (the same text as docs/openapi.json). */
int sg_openapi_cmd(int argc, char **argv);

#endif
