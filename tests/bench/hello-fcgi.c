/* hello-fcgi: the smallest useful FastCGI responder, a baseline for
 * bench-fcgi.sh.  Spawned by the web server with the listening socket on
 * fd 0 (lighttpd bin-path), like photovote.fcgi; N threads (default 4,
 * photovote.fcgi's default) each accept, read the whole body and answer a
 * small JSON object.
 *
 * usage: hello-fcgi [THREADS] */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_THREADS 256

static void *serve(void *arg)
{
	static const char answer[] = "Status: 200 OK\r\n"
				     "Content-Type: application/json\r\n"
				     "Content-Length: 18\r\n"
				     "\r\n"
				     "{\"hello\":\"world\"}\n";
	FCGX_Request r;
	char buf[16384];

	(void)arg;
	if (FCGX_InitRequest(&r, 0, 0) != 0) {
		fprintf(stderr, "hello-fcgi: FCGX_InitRequest failed\n");
		return NULL;
	}
	while (FCGX_Accept_r(&r) >= 0) {
		/* Read the body as a real handler would. */
		while (FCGX_GetStr(buf, sizeof buf, r.in) > 0)
			;
		FCGX_PutStr(answer, (int)sizeof answer - 1, r.out);
		FCGX_Finish_r(&r);
	}
	FCGX_Free(&r, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[MAX_THREADS];
	int n = argc > 1 ? atoi(argv[1]) : 4;

	if (n < 1 || n > MAX_THREADS) {
		fprintf(stderr, "usage: hello-fcgi [THREADS 1..%d]\n", MAX_THREADS);
		return 2;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "hello-fcgi: FCGX_Init failed\n");
		return 1;
	}
	/* libfcgi catches SIGTERM only to set a flag that threads blocked in
	 * accept() never look at, so lighttpd's TERM at shutdown would leave
	 * this process behind: let TERM end it. */
	signal(SIGTERM, SIG_DFL);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&threads[i], NULL, serve, NULL) != 0) {
			fprintf(stderr, "hello-fcgi: cannot start thread %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
