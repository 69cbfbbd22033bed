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
 * The file is opened first and its owner and mode are checked on the open
 * descriptor, as PostgreSQL checks its TLS key: owned by the server's OS
 * user with no group or world access, or owned by root with at most group
 * read.  Checking the path and then opening it would let the file be
 * swapped in between.  Messages never name the path to the client (only
 * the server log gets it, errdetail_log): it tells where the keys are.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#define CARD_MAX_KEY_VERSIONS 64
#define CARD_KEY_FILE_MAX (64 * 1024)	/* far more than 64 key lines */

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

/*
 * The transaction that last found keyring up to date with its file: within
 * it, the MAC key and a given version's key are taken without looking at
 * the file again (a card order uses keys three times; each stat() was a
 * system call).  The newest version, which seals new PANs, is always
 * looked up afresh: a transaction held open across a rotation must not
 * seal PANs under a key the operator has since retired.
 */
static LocalTransactionId keyring_checked_in = InvalidLocalTransactionId;

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
key_file_line_error(char *content, size_t content_len, KeyRing *ring, char *line,
					size_t linesize, uint8 *key, int lineno, const char *what)
{
	explicit_bzero(line, linesize);
	explicit_bzero(key, CARD_KEY_LEN);
	explicit_bzero(ring, sizeof(KeyRing));
	explicit_bzero(content, content_len);
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("invalid line %d in the file named by \"card.key_file\"", lineno),
			 errdetail("%s", what),
			 errhint("Each line is \"mac <64 hex digits>\" or \"<version> <64 hex digits>\".")));
}

/* Error about the key file (code: an errcode() call); the path goes to the server log only. */
#define key_file_error(code, path, ...) \
	ereport(ERROR, \
			(code, errmsg(__VA_ARGS__), \
			 errdetail_log("The key file is \"%s\".", path)))

/*
 * Open the key file, check its owner and mode on the open descriptor, and
 * read it whole into a palloc'd buffer (*len bytes).  *st gets its fstat().
 */
static pg_noinline char *
slurp_key_file(const char *path, struct stat *st, size_t *len)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	char	   *content;
	ssize_t		got = 0;

	if (fd < 0)
		key_file_error(errcode_for_file_access(), path,
					   "could not open the file named by \"card.key_file\": %m");
	if (fstat(fd, st) != 0)
	{
		CloseTransientFile(fd);
		key_file_error(errcode_for_file_access(), path,
					   "could not stat the file named by \"card.key_file\": %m");
	}
	if (!S_ISREG(st->st_mode) ||
		!((st->st_uid == geteuid() && (st->st_mode & (S_IRWXG | S_IRWXO)) == 0) ||
		  (st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) == 0)))
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the file named by \"card.key_file\" has group or world access, or another owner"),
				 errdetail_log("The key file is \"%s\".", path),
				 errhint("The file must be a regular file owned by the server's OS user with mode 600 (or by root with mode 640).")));
	}
	if (st->st_size > CARD_KEY_FILE_MAX)
	{
		CloseTransientFile(fd);
		key_file_error(errcode(ERRCODE_CONFIG_FILE_ERROR), path,
					   "the file named by \"card.key_file\" is larger than %d bytes",
					   CARD_KEY_FILE_MAX);
	}
	content = palloc0(st->st_size + 1);
	*len = 0;
	while (*len < (size_t) st->st_size &&
		   (got = read(fd, content + *len, st->st_size - *len)) > 0)
		*len += got;
	if (got < 0)
	{
		int			save_errno = errno;

		explicit_bzero(content, st->st_size + 1);
		CloseTransientFile(fd);
		errno = save_errno;
		key_file_error(errcode_for_file_access(), path,
					   "could not read the file named by \"card.key_file\": %m");
	}
	CloseTransientFile(fd);
	return content;
}

/* Parse the key file into *ring (*st: its identity); errors on any defect. */
static pg_noinline void
read_key_file(const char *path, struct stat *st, KeyRing *ring)
{
	size_t		content_len;
	char	   *content = slurp_key_file(path, st, &content_len);
	char	   *next = content;
	char		line[512];
	uint8		key[CARD_KEY_LEN];
	int			lineno = 0;

	memset(ring, 0, sizeof(KeyRing));
	memset(key, 0, sizeof(key));
	while (*next != '\0')
	{
		size_t		linelen = strcspn(next, "\n");
		char	   *p = line;
		char	   *word;
		char	   *hex;
		size_t		hexlen;

		lineno++;
		if (linelen >= sizeof(line))
			key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno,
								"The line is too long.");
		memcpy(line, next, linelen);
		line[linelen] = '\0';
		next += linelen + (next[linelen] == '\n');

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\r' || *p == '\0')
			continue;
		word = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p == '\0')
			key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "A key is missing.");
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		hex = p;
		hexlen = strcspn(hex, " \t\r\n");
		if (hex[hexlen + strspn(hex + hexlen, " \t\r\n")] != '\0')
			key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "Extra text follows the key.");
		if (!decode_key(hex, hexlen, key))
			key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "A key must be exactly 64 hexadecimal digits.");

		if (strcmp(word, "mac") == 0)
		{
			if (ring->has_mac)
				key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "The MAC key is given twice.");
			memcpy(ring->mac, key, CARD_KEY_LEN);
			ring->has_mac = true;
		}
		else
		{
			char	   *end;
			long		version = strtol(word, &end, 10);

			if (*end != '\0' || version < 1 || version > 32767)
				key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "A key version must be an integer from 1 to 32767.");
			for (int i = 0; i < ring->nenc; i++)
				if (ring->versions[i] == version)
					key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "A key version is given twice.");
			if (ring->nenc == CARD_MAX_KEY_VERSIONS)
				key_file_line_error(content, content_len, ring, line, sizeof(line), key, lineno, "Too many key versions.");
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
	explicit_bzero(content, content_len);
	pfree(content);
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

/*
 * The key ring for the current card.key_file, re-read when the file changes;
 * unless look is set, the file is looked at once per transaction.
 */
static KeyRing *
current_keyring(bool look)
{
	struct stat st;
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	bool		same_path = keyring != NULL && keyring->path != NULL &&
		card_key_file != NULL && strcmp(keyring->path, card_key_file) == 0;

	if (!look && same_path && LocalTransactionIdIsValid(lxid) && keyring_checked_in == lxid)
		return keyring;
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
		key_file_error(errcode_for_file_access(), card_key_file,
					   "could not stat the file named by \"card.key_file\": %m");
	}

	if (!(same_path &&
		  keyring->identity.st_ino == st.st_ino &&
		  keyring->identity.st_dev == st.st_dev &&
		  keyring->identity.st_size == st.st_size &&
		  keyring->identity.st_mtim.tv_sec == st.st_mtim.tv_sec &&
		  keyring->identity.st_mtim.tv_nsec == st.st_mtim.tv_nsec))
	{
		KeyRing    *fresh = MemoryContextAllocZero(TopMemoryContext, sizeof(KeyRing));

		PG_TRY();
		{
			read_key_file(card_key_file, &st, fresh);	/* st: what was read */
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
	}
	keyring_checked_in = lxid;
	return keyring;
}

/* The MAC key; an error if the key file has none. */
const uint8 *
card_mac_key(void)
{
	KeyRing    *ring = current_keyring(false);

	if (!ring->has_mac)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the key file has no MAC key"),
				 errdetail_log("The key file is \"%s\".", ring->path),
				 errhint("Add a line \"mac <64 hex digits>\".")));
	return ring->mac;
}

/* The PAN encryption key of one version; an error if the file lacks it. */
const uint8 *
card_enc_key(int version)
{
	KeyRing    *ring = current_keyring(false);

	for (int i = 0; i < ring->nenc; i++)
		if (ring->versions[i] == version)
			return ring->enc[i];
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("the key file has no encryption key version %d", version),
			 errdetail_log("The key file is \"%s\".", ring->path),
			 errhint("Key versions still in use must stay in the key file until card.rotate_keys() has moved every PAN off them.")));
	return NULL;				/* keep compiler quiet */
}

/* The highest encryption key version, which encrypts new PANs. */
int
card_enc_key_newest(void)
{
	KeyRing    *ring = current_keyring(true);

	if (ring->newest == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the key file has no encryption key"),
				 errdetail_log("The key file is \"%s\".", ring->path),
				 errhint("Add a line \"1 <64 hex digits>\".")));
	return ring->newest;
}
