#!/bin/sh
# man_options.sh - govgate(8) and the commands' --help agree (TAP).
#
# For each command, the options its --help names (quoted references to
# other commands, 'govgate ...', left out) must be the options that the
# command's subsection of govgate.8 defines (its .It lines), and the
# other way round; -h/--help, documented once for all, is left out on
# both sides. The SYNOPSIS may use only options the subsection defines,
# and the commands of `govgate --help` must be those with a subsection.
# A command the binary does not know yet is skipped.
set -u

top_srcdir=${top_srcdir:-.}
GOVGATE=${GOVGATE:-src/govgate}
man=$top_srcdir/man/govgate.8
tmp=$(mktemp -d "${TMPDIR:-/tmp}/man_options.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# One "WHERE<TAB>OPTION" line per Fl of a SYNOPSIS line (WHERE is
# "SYNOPSIS <command>") or of an .It line of a "govgate ..." subsection
# of DESCRIPTION (WHERE is the subsection title).
awk '
function emit(where, line,    t) {
	gsub(/\\-/, "-", line)
	while (match(line, /(^|[ .])Fl +-?[A-Za-z][A-Za-z0-9-]*/)) {
		t = substr(line, RSTART, RLENGTH)
		sub(/^[ .]?Fl +/, "", t)
		print where "\t-" t
		line = substr(line, RSTART + RLENGTH)
	}
}
/^\.Sh / { sec = substr($0, 5); ss = ""; next }
/^\.Ss / { ss = substr($0, 5); next }
sec == "SYNOPSIS" && /^\.Nm( |$)/ { cmd = ""; next }
sec == "SYNOPSIS" && /^\.Cm / {
	cmd = cmd == "" ? substr($0, 5) : cmd " " substr($0, 5)
	next
}
sec == "SYNOPSIS" { emit("SYNOPSIS " cmd, $0); next }
sec == "DESCRIPTION" && ss ~ /^govgate / && /^\.It / { emit(ss, $0) }
' "$man" >"$tmp/man.tsv" || exit 1

# The commands of the SYNOPSIS, one per line ("policy test").
awk '
function flush() { if (cmd != "") print cmd; cmd = "" }
/^\.Sh SYNOPSIS/ { s = 1; next }
/^\.Sh / { if (s) flush(); s = 0 }
s && /^\.Nm( |$)/ { flush(); next }
s && /^\.Cm / { cmd = cmd == "" ? substr($0, 5) : cmd " " substr($0, 5) }
' "$man" >"$tmp/syncmds" || exit 1

# The options the man page defines for subsections "govgate A", ...
man_opts() {
	for ss in "$@"; do
		awk -F '\t' -v ss="$ss" '$1 == ss { print $2 }' "$tmp/man.tsv"
	done | grep -v -x -e '-h' -e '--help' | sort -u
}

# The options --help names for a command (words in $@).
help_opts() {
	sed "s/'govgate [^']*'//g" "$tmp/help" |
	    grep -o -E '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9-]*' |
	    sed 's/^[^-]*//' | grep -v -x -e '-h' -e '--help' | sort -u
}

# command | subsections of govgate.8 its --help answers for
rows='serve|govgate serve
check|govgate check
explain|govgate explain
policy test|govgate policy test|govgate policy diff
policy diff|govgate policy test|govgate policy diff
audit keygen|govgate audit keygen
audit verify|govgate audit verify
audit query|govgate audit query
version|govgate version'

nrows=$(printf '%s\n' "$rows" | wc -l)
echo "1..$((nrows * 2 + 1))"

i=0
fail() {
	echo "not ok $i - $1"
	shift
	for line in "$@"; do
		echo "# $line"
	done
}

IFS_SAVE=$IFS
printf '%s\n' "$rows" >"$tmp/rows"
while IFS='|' read -r cmd ss1 ss2; do
	IFS=$IFS_SAVE
	# shellcheck disable=SC2086
	set -- $cmd
	i=$((i + 1))
	if ! "$GOVGATE" "$@" --help >"$tmp/help" 2>"$tmp/err"; then
		if grep -q 'unknown command' "$tmp/err"; then
			echo "ok $i - $cmd: options match govgate.8 # SKIP" \
			    "govgate has no $1 command yet"
			i=$((i + 1))
			echo "ok $i - $cmd: synopsis # SKIP no $1 command yet"
			continue
		fi
		fail "$cmd --help fails" "$(cat "$tmp/err")"
		i=$((i + 1))
		fail "$cmd: synopsis not checked"
		continue
	fi
	help_opts >"$tmp/h"
	if [ -n "$ss2" ]; then
		man_opts "$ss1" "$ss2" >"$tmp/m"
	else
		man_opts "$ss1" >"$tmp/m"
	fi
	if ! grep -q . "$tmp/m" && ! grep -q -x -F ".Ss $ss1" "$man"; then
		fail "$cmd: govgate.8 has no subsection \"$ss1\""
	else
		only_help=$(comm -23 "$tmp/h" "$tmp/m" | tr '\n' ' ')
		only_man=$(comm -13 "$tmp/h" "$tmp/m" | tr '\n' ' ')
		if [ -z "$only_help$only_man" ]; then
			echo "ok $i - $cmd: --help and govgate.8 name the same" \
			    "options ($(tr '\n' ' ' <"$tmp/h"))"
		else
			fail "$cmd: --help and govgate.8 disagree" \
			    "in --help only: $only_help" \
			    "in govgate.8 only: $only_man"
		fi
	fi
	i=$((i + 1))
	awk -F '\t' -v w="SYNOPSIS $cmd" '$1 == w { print $2 }' \
	    "$tmp/man.tsv" | sort -u >"$tmp/s"
	extra=$(comm -23 "$tmp/s" "$tmp/m" | grep -v -x -e '-h' \
	    -e '--help' | tr '\n' ' ')
	if ! grep -q -x -F "$cmd" "$tmp/syncmds"; then
		fail "$cmd: not in the SYNOPSIS of govgate.8"
	elif [ -z "$extra" ]; then
		echo "ok $i - $cmd: the synopsis uses only options" \
		    "the command defines"
	else
		fail "$cmd: the synopsis uses options its subsection does not define: $extra"
	fi
done <"$tmp/rows"
IFS=$IFS_SAVE

# The command list of `govgate --help` against the subsections.
i=$((i + 1))
"$GOVGATE" --help 2>/dev/null |
    awk '/^commands:/ { c = 1; next } c && /^  [a-z]/ { print $1 }
	c && /^$/ { c = 0 }' | sort -u >"$tmp/cmds"
awk '/^\.Ss govgate / { print $3 }' "$man" | sort -u >"$tmp/mcmds"
missing=$(comm -23 "$tmp/cmds" "$tmp/mcmds" | tr '\n' ' ')
if [ ! -s "$tmp/cmds" ]; then
	fail "govgate --help lists no commands"
elif [ -n "$missing" ]; then
	fail "commands of govgate --help without a subsection in govgate.8:" \
	    "$missing"
else
	echo "ok $i - every command of govgate --help has a subsection in" \
	    "govgate.8"
fi
exit 0
