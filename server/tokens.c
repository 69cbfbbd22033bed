/*
 * tokens.c: bearer tokens of API clients.
 *
 * The tokens file holds a line per client, "<role> <SHA-256 hex of its
 * token>" ('#' starts a comment).  Only hashes are kept: a copy of the file
 * lets nobody call the API.  A presented token is hashed and compared with
 * every entry in constant time, so timing tells nothing of which is close.
 */
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "server.h"

#define TOKEN_HASH_LEN 32
#define MAX_ROLE_LEN 63			/* NAMEDATALEN - 1 */

typedef struct TokenEntry
{
	char		role[MAX_ROLE_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
} TokenEntry;

static TokenEntry *entries;
static int	nentries;

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parse "<role> <64 hex digits>" into entry; false if malformed. */
static bool
parse_line(char *line, TokenEntry *entry)
{
	char	   *role = strtok(line, " \t");
	char	   *hex = strtok(NULL, " \t");

	if (role == NULL || hex == NULL || strtok(NULL, " \t") != NULL)
		return false;
	if (strlen(role) > MAX_ROLE_LEN || strlen(hex) != 2 * TOKEN_HASH_LEN)
		return false;
	for (int i = 0; i < TOKEN_HASH_LEN; i++)
	{
		int			hi = hex_value((unsigned char) hex[2 * i]);
		int			lo = hex_value((unsigned char) hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		entry->hash[i] = (unsigned char) (hi << 4 | lo);
	}
	strcpy(entry->role, role);
	return true;
}

/* Read the tokens file; 0 on success, else -1 with err set. */
int
tokens_load(const char *path, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	int			lineno = 0;
	int			rc = 0;

	if (f == NULL)
	{
		snprintf(err, errlen, "cannot open tokens file %s: %s", path, strerror(errno));
		return -1;
	}
	/* Whole lines, however long: a long comment must not hide a token. */
	while (rc == 0 && getline(&line, &cap, f) != -1)
	{
		char	   *p = line;
		TokenEntry entry;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (!parse_line(p, &entry))
		{
			snprintf(err, errlen, "%s:%d: expected \"<role> <SHA-256 hex of the token>\"",
					 path, lineno);
			rc = -1;
		}
		else if (strcasecmp(entry.role, "none") == 0)
		{
			/* set_config('role', 'none') would run as the server's own login role */
			snprintf(err, errlen, "%s:%d: \"none\" is not a role a client can be", path, lineno);
			rc = -1;
		}
		else
		{
			TokenEntry *grown = realloc(entries, (nentries + 1) * sizeof(TokenEntry));

			if (grown == NULL)
			{
				snprintf(err, errlen, "out of memory");
				rc = -1;
			}
			else
			{
				entries = grown;
				entries[nentries++] = entry;
			}
		}
	}
	free(line);
	fclose(f);
	if (rc == 0 && nentries == 0)
	{
		snprintf(err, errlen, "%s holds no token", path);
		rc = -1;
	}
	return rc;
}

/* The roles of the tokens file, in file order (the server checks them at start). */
int
tokens_count(void)
{
	return nentries;
}

const char *
tokens_role_at(int i)
{
	return entries[i].role;
}

/* The role a bearer token maps to, or NULL. */
const char *
tokens_role(const char *bearer)
{
	unsigned char hash[TOKEN_HASH_LEN];
	unsigned int hash_len = 0;
	const char *role = NULL;

	if (bearer == NULL || *bearer == '\0' ||
		!EVP_Digest(bearer, strlen(bearer), hash, &hash_len, EVP_sha256(), NULL))
		return NULL;
	/* Every entry is compared, whichever matches. */
	for (int i = 0; i < nentries; i++)
		if (CRYPTO_memcmp(hash, entries[i].hash, TOKEN_HASH_LEN) == 0)
			role = entries[i].role;
	OPENSSL_cleanse(hash, sizeof(hash));
	return role;
}
