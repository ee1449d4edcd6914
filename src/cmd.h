/* cmd.h - the subcommands of the govgate binary, one file each. */
#ifndef CMD_H
#define CMD_H

#include <stdio.h>

int cmd_version(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* True when argv holds -h or --help (then print usage and exit 0). */
int cmd_wants_help(int argc, char **argv);

#endif /* CMD_H */
