/* The named string formats of the API description (defined in api_valid.c). */
#ifndef SG_SERVER_API_FORMATS_H
#define SG_SERVER_API_FORMATS_H

#include "server/api.h"

extern const struct api_format api_f_uuid, api_f_text, api_f_email, api_f_subnet4, api_f_subnet6,
    api_f_cidr, api_f_ip, api_f_endpoint, api_f_wg_key, api_f_fips_key, api_f_challenge,
    api_f_proof, api_f_refresh, api_f_mfa_token, api_f_temp_ref, api_f_password, api_f_binary, api_f_wg_config,
    api_f_pem,
    api_f_name, api_f_domain, api_f_ip_port, api_f_sha384_hex, api_f_b64url;

#endif
