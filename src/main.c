/* main.c - the govgate command: subcommand dispatch and --help. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "cmd.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} main_cmds[] = {
	{ "audit", cmd_audit, "verify, query and sign the audit trail" },
	{ "check", cmd_check, "validate config, policy, certificates, keys" },
	{ "explain", cmd_explain, "decide one request offline, step by step" },
	{ "policy", cmd_policy, "policy test cases and policy diff" },
	{ "serve", cmd_serve, "run the gateway in the foreground" },
	{ "version", cmd_version, "print version and library versions" },
};

static void
main_usage(FILE *fp)
{
	size_t i;

	fprintf(fp,
	    "usage: govgate COMMAND [OPTIONS]\n\n"
	    "govgate is a mutual-TLS gateway that decides, audits and "
	    "forwards\ncross-department requests.\n\ncommands:\n");
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		fprintf(fp, "  %-9s %s\n", main_cmds[i].name,
		    main_cmds[i].summary);
	fprintf(fp,
	    "\nRun 'govgate COMMAND --help' for a command's options.\n"
	    "See govgate(8), govgate.yaml(5) and govgate-policy(5).\n");
}

/* True when argv (after the command name) asks for help. */
int
cmd_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

int
cmd_version(int argc, char **argv)
{
	if (cmd_wants_help(argc, argv)) {
		printf("usage: govgate version\n\nPrint govgate's version and "
		       "the versions of the libraries it runs with.\n");
		return 0;
	}
	printf("govgate %s\n", PACKAGE_VERSION);
	printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("libyaml %s\n", yaml_get_version_string());
	return 0;
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (strcmp(argv[1], main_cmds[i].name) == 0)
			return main_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "govgate: unknown command \"%s\"\n\n", argv[1]);
	main_usage(stderr);
	return 2;
}
