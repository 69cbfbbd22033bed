/*
 * main.c: card-server's command line, listening socket, request bodies,
 * request log and graceful shutdown.
 *
 *   card-server --listen HOST:PORT --database CONNINFO --tokens FILE
 *               --pages-role ROLE [--tls-cert FILE --tls-key FILE]
 *               [--pool N] [--poll-pool N] [--max-body BYTES] [--timeout S] [--max-wait S]
 *               [--port-file FILE]
 *
 * libmicrohttpd runs a thread per connection: a request blocks its thread
 * while the database answers, and waits for a free pool connection first.
 * SIGTERM or SIGINT stops accepting, lets requests in flight finish (up to
 * the longest long poll), closes the pool and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

ServerConfig server_config = {
	.listen_host = "127.0.0.1",
	.listen_port = 8080,
	.pool_size = 8,
	.poll_pool_size = 4,
	.max_body = 64 * 1024,
	.timeout_s = 30,
	.max_wait_s = 30,
};

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: card-server --listen HOST:PORT --database CONNINFO --tokens FILE --pages-role ROLE\n"
			"                   [--tls-cert FILE --tls-key FILE] [--pool N] [--poll-pool N] [--max-body BYTES]\n"
			"                   [--timeout SECONDS] [--max-wait SECONDS] [--port-file FILE]\n"
			"  --listen      address and port to serve (port 0: any free one, printed)\n"
			"  --database    libpq connection string of the server's login role\n"
			"  --tokens      file of \"<role> <SHA-256 hex of its bearer token>\" lines\n"
			"  --pages-role  the role the hosted pages call the database as\n"
			"  --tls-cert, --tls-key  serve HTTPS with this PEM certificate and key\n"
			"  --pool        database connections for calls (default 8)\n"
			"  --poll-pool   database connections for long polls of GET /v3/events (default 4)\n"
			"  --max-body    largest request body in bytes (default 65536)\n"
			"  --timeout     statement and idle connection timeout (default 30)\n"
			"  --max-wait    longest long poll of GET /v3/events?wait= (default 30)\n"
			"  --port-file   write the port listened on to this file\n");
}

static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	long		len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
	{
		buf = malloc(len + 1);
		if (buf && fread(buf, 1, len, f) == (size_t) len)
			buf[len] = '\0';
		else
		{
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static bool
parse_listen(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	char	   *end;
	long		port;
	static char host[64];
	size_t		host_len;

	if (colon == NULL)
		return false;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return false;
	host_len = colon - arg;
	if (host_len >= 2 && arg[0] == '[' && arg[host_len - 1] == ']')
	{
		arg++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof(host))
		return false;
	memcpy(host, arg, host_len);
	host[host_len] = '\0';
	server_config.listen_host = host;
	server_config.listen_port = (int) port;
	return true;
}

/* The status of the response this thread queued last (for the log line). */
static __thread unsigned int response_status;

/* Requests being answered now: shutdown waits for them, not for idle connections. */
static atomic_int requests_in_flight;

static void
log_request(const Request *req, double ms)
{
	char		path[256];
	size_t		n = 0;

	/*
	 * The path only (a query string may hold a token), decoded by
	 * libmicrohttpd: bytes outside printable ASCII are shown as \xNN, so no
	 * path can end the line and forge another.
	 */
	for (const unsigned char *p = (const unsigned char *) req->url; *p && n < sizeof(path) - 5; p++)
	{
		if (*p >= 0x21 && *p < 0x7f && *p != '\\')
			path[n++] = (char) *p;
		else
			n += snprintf(path + n, sizeof(path) - n, "\\x%02x", *p);
	}
	path[n] = '\0';
	fprintf(stderr, "card-server: %s %s %u %.1f ms\n", req->method, path, response_status, ms);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *connection, const char *url,
		   const char *method, const char *version, const char *upload_data,
		   size_t *upload_data_size, void **con_cls)
{
	Request    *req = *con_cls;
	enum MHD_Result ret;
	double		started;

	if (req == NULL)
	{
		req = calloc(1, sizeof(Request));
		if (req == NULL)
			return MHD_NO;
		req->connection = connection;
		req->method = method;
		req->url = url;
		req->body = calloc(1, 1);
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		if (!req->too_large && req->body_len + *upload_data_size <= server_config.max_body)
		{
			char	   *grown = realloc(req->body, req->body_len + *upload_data_size + 1);

			if (grown == NULL)
				return MHD_NO;
			req->body = grown;
			memcpy(req->body + req->body_len, upload_data, *upload_data_size);
			req->body_len += *upload_data_size;
			req->body[req->body_len] = '\0';
		}
		else
			req->too_large = true;	/* drained and answered 413 */
		*upload_data_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&requests_in_flight, 1);
	started = now_ms();
	response_status = 0;
	ret = pages_path(url) ? pages_handle(req) : api_handle(req);
	log_request(req, now_ms() - started);
	atomic_fetch_sub(&requests_in_flight, 1);
	return ret;
}

/* Records the status for the log line (respond() in http.c calls it). */
void
note_response_status(unsigned int status)
{
	response_status = status;
}

static void
on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	Request    *req = *con_cls;

	if (req == NULL)
		return;
	if (req->body)
	{
		/* A body may hold a PIN: wiped before it is freed. */
		memset(req->body, 0, req->body_len);
		free(req->body);
	}
	free(req);
	*con_cls = NULL;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"listen", required_argument, NULL, 'l'},
		{"database", required_argument, NULL, 'd'},
		{"tokens", required_argument, NULL, 't'},
		{"pages-role", required_argument, NULL, 'r'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"pool", required_argument, NULL, 'p'},
		{"poll-pool", required_argument, NULL, 'P'},
		{"max-body", required_argument, NULL, 'b'},
		{"timeout", required_argument, NULL, 'T'},
		{"max-wait", required_argument, NULL, 'w'},
		{"port-file", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	char		err[512];
	int			opt;
	sigset_t	stop_signals;
	int			sig;
	struct sockaddr_storage addr;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_ERROR_LOG | MHD_USE_ITC;
	char	   *cert = NULL;
	char	   *key = NULL;
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	int			port;
	double		deadline;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1)
	{
		switch (opt)
		{
			case 'l':
				if (!parse_listen(optarg))
				{
					fprintf(stderr, "card-server: --listen takes HOST:PORT, such as 127.0.0.1:8080\n");
					return 2;
				}
				break;
			case 'd':
				server_config.conninfo = optarg;
				break;
			case 't':
				server_config.tokens_file = optarg;
				break;
			case 'r':
				server_config.pages_role = optarg;
				break;
			case 'c':
				server_config.tls_cert = optarg;
				break;
			case 'k':
				server_config.tls_key = optarg;
				break;
			case 'p':
				server_config.pool_size = atoi(optarg);
				break;
			case 'P':
				server_config.poll_pool_size = atoi(optarg);
				break;
			case 'b':
				server_config.max_body = (size_t) atol(optarg);
				break;
			case 'T':
				server_config.timeout_s = atoi(optarg);
				break;
			case 'w':
				server_config.max_wait_s = atoi(optarg);
				break;
			case 'f':
				server_config.port_file = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc || !server_config.conninfo || !server_config.tokens_file ||
		!server_config.pages_role || !server_config.tls_cert != !server_config.tls_key ||
		server_config.pool_size < 1 || server_config.pool_size > 256 ||
		server_config.poll_pool_size < 1 || server_config.poll_pool_size > 256 ||
		server_config.max_body < 1 || server_config.timeout_s < 1 ||
		server_config.max_wait_s < 0 || server_config.max_wait_s > 3600)
	{
		usage(stderr);
		return 2;
	}
	openlog("card-server", LOG_PID | LOG_PERROR, LOG_DAEMON);
	if (tokens_load(server_config.tokens_file, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "card-server: %s\n", err);
		return 1;
	}
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, server_config.listen_host,
				  &((struct sockaddr_in *) &addr)->sin_addr) == 1)
	{
		((struct sockaddr_in *) &addr)->sin_family = AF_INET;
		((struct sockaddr_in *) &addr)->sin_port = htons(server_config.listen_port);
	}
	else if (inet_pton(AF_INET6, server_config.listen_host,
					   &((struct sockaddr_in6 *) &addr)->sin6_addr) == 1)
	{
		((struct sockaddr_in6 *) &addr)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *) &addr)->sin6_port = htons(server_config.listen_port);
		flags |= MHD_USE_IPv6;
	}
	else
	{
		fprintf(stderr, "card-server: --listen needs a numeric address, not %s\n",
				server_config.listen_host);
		return 2;
	}
	if (server_config.tls_cert)
	{
		cert = read_file(server_config.tls_cert);
		key = read_file(server_config.tls_key);
		if (cert == NULL || key == NULL)
		{
			fprintf(stderr, "card-server: cannot read the TLS certificate or key\n");
			return 1;
		}
		flags |= MHD_USE_TLS;
	}
	if (pool_init(server_config.conninfo, server_config.pool_size, server_config.poll_pool_size,
				  err, sizeof(err)) != 0)
	{
		fprintf(stderr, "card-server: %s\n", err);
		return 1;
	}
	for (int i = -1; i < tokens_count(); i++)
	{
		if (pool_check_role(i < 0 ? server_config.pages_role : tokens_role_at(i), err, sizeof(err)) != 0)
		{
			fprintf(stderr, "card-server: %s\n", err);
			pool_close();
			return 1;
		}
	}

	/* Signals wait for the main thread; every other thread blocks them. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
							  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
							  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) server_config.timeout_s,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 512,
							  /* one client cannot hold every connection slot */
							  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) 64,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 128 * 1024,
							  /* without TLS the list ends here */
							  server_config.tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
							  MHD_OPTION_HTTPS_MEM_KEY, key,
							  MHD_OPTION_END);
	if (daemon == NULL)
	{
		fprintf(stderr, "card-server: cannot listen on %s:%d\n", server_config.listen_host,
				server_config.listen_port);
		pool_close();
		return 1;
	}
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : server_config.listen_port;
	fprintf(stderr, "card-server: listening on %s://%s%s%s:%d\n",
			server_config.tls_cert ? "https" : "http",
			strchr(server_config.listen_host, ':') ? "[" : "", server_config.listen_host,
			strchr(server_config.listen_host, ':') ? "]" : "", port);
	if (server_config.port_file)
	{
		FILE	   *f = fopen(server_config.port_file, "w");

		if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0)
		{
			fprintf(stderr, "card-server: cannot write %s\n", server_config.port_file);
			MHD_stop_daemon(daemon);
			pool_close();
			return 1;
		}
	}

	while (sigwait(&stop_signals, &sig) != 0)
		;
	fprintf(stderr, "card-server: signal %d: finishing the requests in flight\n", sig);
	{
		/* No new connection: the listening socket closes now, not at exit. */
		MHD_socket	listener = MHD_quiesce_daemon(daemon);

		if (listener != MHD_INVALID_SOCKET)
			close(listener);
	}
	deadline = now_ms() + (server_config.max_wait_s + server_config.timeout_s) * 1000.0;
	while (atomic_load(&requests_in_flight) > 0 && now_ms() < deadline)
		usleep(20 * 1000);
	MHD_stop_daemon(daemon);
	pool_close();
	free(cert);
	free(key);
	fprintf(stderr, "card-server: stopped\n");
	return 0;
}
