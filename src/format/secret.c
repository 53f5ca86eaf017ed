// SPDX-License-Identifier: GPL-2.0-or-later
/* Which values are secrets, and hiding them (secret.h). */
#include "format/secret.h"

#include <ctype.h>
#include <string.h>

bool dsfs_secret_name(const char *key, size_t len)
{
	static const char *const words[] = { "password",   "passwd",        "passphrase",  "secret", "token",
					     "credential", "privatekey",    "private_key", "apikey", "api_key",
					     "api-key",    "authorization", NULL };
	char low[128];
	size_t i;

	for (i = 0; i < len && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[i] = '\0';
	for (i = 0; words[i]; i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

bool dsfs_secrets_hide(json_object *o)
{
	bool hid = false;

	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			hid |= dsfs_secrets_hide(json_object_array_get_idx(o, i));
		return hid;
	}
	if (!json_object_is_type(o, json_type_object))
		return false;
	json_object_object_foreach(o, key, val) {
		if (val && dsfs_secret_name(key, strlen(key))) {
			json_object_object_add(o, key, json_object_new_string(DSFS_SECRET_SHOWN));
			hid = true;
		} else {
			hid |= dsfs_secrets_hide(val);
		}
	}
	return hid;
}
