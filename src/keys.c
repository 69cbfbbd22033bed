/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  The key file named by card.key_file.
 *
 * Lines are "mac <64 hex>" (the one MAC key) and "<version> <64 hex>"
 * (a PAN encryption key); blank lines and lines starting with '#' are
 * ignored.  The file is read on first use and again whenever its path or
 * its identity (inode, size, mtime) changes, so a reload or an atomic
 * rename of a new file takes effect without a restart.  Key bytes live
 * only in TopMemoryContext of the backend and are wiped when replaced.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include <sys/stat.h>

#include "storage/fd.h"
#include "utils/memutils.h"

#define CARD_MAX_KEY_VERSIONS 64

typedef struct KeyRing
{
	char	   *path;			/* file the keys came from, or NULL */
	struct stat identity;		/* its stat() when read */
	bool		has_mac;
	uint8		mac[CARD_KEY_LEN];
	int			nenc;
	int			versions[CARD_MAX_KEY_VERSIONS];
	uint8		enc[CARD_MAX_KEY_VERSIONS][CARD_KEY_LEN];
	int			newest;			/* highest version, 0 if none */
} KeyRing;

static KeyRing *keyring = NULL;

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode exactly 64 hex digits into a key; false if malformed. */
static bool
decode_key(const char *hex, size_t len, uint8 *key)
{
	if (len != 2 * CARD_KEY_LEN)
		return false;
	for (int i = 0; i < CARD_KEY_LEN; i++)
	{
		int			hi = hex_value(hex[2 * i]);
		int			lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		key[i] = (uint8) (hi << 4 | lo);
	}
	return true;
}

/*
 * Error for a malformed line: names the line number, never its content.
 * Wipes the whole line buffer (it may hold key digits past a NUL we wrote)
 * and the key decoded so far.
 */
static void
key_file_line_error(FILE *file, KeyRing *ring, char *line, size_t linesize,
					uint8 *key, int lineno, const char *what)
{
	explicit_bzero(line, linesize);
	explicit_bzero(key, CARD_KEY_LEN);
	explicit_bzero(ring, sizeof(KeyRing));
	FreeFile(file);
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("invalid line %d in the file named by \"card.key_file\"", lineno),
			 errdetail("%s", what),
			 errhint("Each line is \"mac <64 hex digits>\" or \"<version> <64 hex digits>\".")));
}

/* Parse the key file into *ring; raises an error on any defect. */
static void
read_key_file(const char *path, const struct stat *st, KeyRing *ring)
{
	FILE	   *file;
	char		line[512];
	uint8		key[CARD_KEY_LEN];
	int			lineno = 0;

	if (st->st_mode & (S_IRWXG | S_IRWXO))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" has group or world access", path),
				 errhint("The file must be readable only by the server's OS user: chmod 600.")));

	file = AllocateFile(path, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open key file \"%s\": %m", path)));

	/* Unbuffered, so no stdio buffer keeps a copy of the keys after we close. */
	setvbuf(file, NULL, _IONBF, 0);
	memset(ring, 0, sizeof(KeyRing));
	memset(key, 0, sizeof(key));
	while (fgets(line, sizeof(line), file) != NULL)
	{
		char	   *p = line;
		char	   *word;
		char	   *hex;
		size_t		hexlen;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		word = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p == '\0')
			key_file_line_error(file, ring, line, sizeof(line), key, lineno, "A key is missing.");
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		hex = p;
		hexlen = strcspn(hex, " \t\r\n");
		if (hex[hexlen + strspn(hex + hexlen, " \t\r\n")] != '\0')
			key_file_line_error(file, ring, line, sizeof(line), key, lineno, "Extra text follows the key.");
		if (!decode_key(hex, hexlen, key))
			key_file_line_error(file, ring, line, sizeof(line), key, lineno, "A key must be exactly 64 hexadecimal digits.");

		if (strcmp(word, "mac") == 0)
		{
			if (ring->has_mac)
				key_file_line_error(file, ring, line, sizeof(line), key, lineno, "The MAC key is given twice.");
			memcpy(ring->mac, key, CARD_KEY_LEN);
			ring->has_mac = true;
		}
		else
		{
			char	   *end;
			long		version = strtol(word, &end, 10);

			if (*end != '\0' || version < 1 || version > 32767)
				key_file_line_error(file, ring, line, sizeof(line), key, lineno, "A key version must be an integer from 1 to 32767.");
			for (int i = 0; i < ring->nenc; i++)
				if (ring->versions[i] == version)
					key_file_line_error(file, ring, line, sizeof(line), key, lineno, "A key version is given twice.");
			if (ring->nenc == CARD_MAX_KEY_VERSIONS)
				key_file_line_error(file, ring, line, sizeof(line), key, lineno, "Too many key versions.");
			ring->versions[ring->nenc] = (int) version;
			memcpy(ring->enc[ring->nenc], key, CARD_KEY_LEN);
			ring->nenc++;
			if (version > ring->newest)
				ring->newest = (int) version;
		}
		explicit_bzero(key, sizeof(key));
		explicit_bzero(line, sizeof(line));
	}
	explicit_bzero(line, sizeof(line));
	explicit_bzero(key, sizeof(key));
	if (ferror(file))
	{
		explicit_bzero(ring, sizeof(KeyRing));
		FreeFile(file);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read key file \"%s\": %m", path)));
	}
	FreeFile(file);
}

/* Wipe and free the cached keys. */
static void
forget_keyring(void)
{
	if (keyring == NULL)
		return;
	if (keyring->path)
		pfree(keyring->path);
	explicit_bzero(keyring, sizeof(KeyRing));
	pfree(keyring);
	keyring = NULL;
}

/* The key ring for the current card.key_file, re-read when the file changes. */
static KeyRing *
current_keyring(void)
{
	struct stat st;
	KeyRing    *fresh;

	if (card_key_file == NULL || card_key_file[0] == '\0')
	{
		forget_keyring();
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no key file is configured"),
				 errhint("Set \"card.key_file\" in postgresql.conf to a file of keys readable only by the server, then reload.")));
	}

	if (stat(card_key_file, &st) != 0)
	{
		forget_keyring();
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat key file \"%s\": %m", card_key_file)));
	}

	if (keyring != NULL && keyring->path != NULL &&
		strcmp(keyring->path, card_key_file) == 0 &&
		keyring->identity.st_ino == st.st_ino &&
		keyring->identity.st_dev == st.st_dev &&
		keyring->identity.st_size == st.st_size &&
		keyring->identity.st_mtim.tv_sec == st.st_mtim.tv_sec &&
		keyring->identity.st_mtim.tv_nsec == st.st_mtim.tv_nsec)
		return keyring;

	fresh = MemoryContextAllocZero(TopMemoryContext, sizeof(KeyRing));
	PG_TRY();
	{
		read_key_file(card_key_file, &st, fresh);
	}
	PG_CATCH();
	{
		explicit_bzero(fresh, sizeof(KeyRing));
		pfree(fresh);
		PG_RE_THROW();
	}
	PG_END_TRY();
	fresh->path = MemoryContextStrdup(TopMemoryContext, card_key_file);
	fresh->identity = st;

	forget_keyring();
	keyring = fresh;
	return keyring;
}

/* The MAC key; an error if the key file has none. */
const uint8 *
card_mac_key(void)
{
	KeyRing    *ring = current_keyring();

	if (!ring->has_mac)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" has no MAC key", ring->path),
				 errhint("Add a line \"mac <64 hex digits>\".")));
	return ring->mac;
}

/* The PAN encryption key of one version; an error if the file lacks it. */
const uint8 *
card_enc_key(int version)
{
	KeyRing    *ring = current_keyring();

	for (int i = 0; i < ring->nenc; i++)
		if (ring->versions[i] == version)
			return ring->enc[i];
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("key file \"%s\" has no encryption key version %d", ring->path, version),
			 errhint("Key versions still in use must stay in the key file until card.rotate_keys() has moved every PAN off them.")));
	return NULL;				/* keep compiler quiet */
}

/* The highest encryption key version, which encrypts new PANs. */
int
card_enc_key_newest(void)
{
	KeyRing    *ring = current_keyring();

	if (ring->newest == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" has no encryption key", ring->path),
				 errhint("Add a line \"1 <64 hex digits>\".")));
	return ring->newest;
}
