#include <secureguard/sg_errors.h>

const char *sg_strerror(int err)
{
	switch (err) {
#define SG_ERR_MSG(name, val, msg)                                                                 \
	case (val):                                                                                \
		return msg;
		SG_ERRNO_MAP(SG_ERR_MSG)
#undef SG_ERR_MSG
	}
	return "unknown error";
}

const char *sg_err_name(int err)
{
	switch (err) {
#define SG_ERR_NAME(name, val, msg)                                                                \
	case (val):                                                                                \
		return "SG_E" #name;
		SG_ERRNO_MAP(SG_ERR_NAME)
#undef SG_ERR_NAME
	}
	return "SG_E?";
}
