#!/bin/sh
# geo_test.sh - build small MaxMind databases with contrib/mkzones and
# contrib/mkcountries, then run tests/unit/geo_test on them (TAP).
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/geo_test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

bail() {
	echo "Bail out! $*"
	exit 1
}

# The /24 comes before its /16 on purpose: the most specific must win.
cat > "$tmp/zones.txt" <<'LIST'
# test zones
10.0.0.0/8          intranet
10.30.99.0/24       renshe-lab
10.30.0.0/16        renshe-net   # pension office
10.20.0.0/16        psb-net
192.168.5.7         single-host
2001:db8:30::/48    renshe-net
LIST
cat > "$tmp/countries.txt" <<'LIST'
1.0.1.0/24          CN
114.114.114.0/24    CN
8.8.8.0/24          US
2400:3200::/32      CN
2001:4860::/32      US
LIST

perl "$top_srcdir/contrib/mkzones" "$tmp/zones.mmdb" "$tmp/zones.txt" ||
	bail "mkzones failed"
perl "$top_srcdir/contrib/mkcountries" "$tmp/countries.mmdb" \
	"$tmp/countries.txt" || bail "mkcountries failed"

# Shapes the tools do not write: an IPv4-only City database, a database
# with registered_country only, and a zone database with a numeric zone.
perl -MMaxMind::DB::Writer::Tree -e '
	my ($dir) = @ARGV;
	sub db {
		my ($file, $ipv, $type, $types, @nets) = @_;
		my $t = MaxMind::DB::Writer::Tree->new(ip_version => $ipv,
		    record_size => 24, database_type => $type,
		    description => { en => "test" },
		    remove_reserved_networks => 0,
		    map_key_type_callback => sub { $types->{$_[0]} });
		while (@nets) {
			my ($net, $rec) = splice(@nets, 0, 2);
			$t->insert_network($net, $rec);
		}
		open(my $fh, ">", "$dir/$file") or die "$file: $!";
		$t->write_tree($fh);
		close($fh) or die "$file: $!";
	}
	my %c = (country => "map", registered_country => "map",
	    iso_code => "utf8_string");
	db("v4only.mmdb", 4, "GeoLite2-City", \%c,
	    "8.8.8.0/24", { country => { iso_code => "US" } });
	db("regc.mmdb", 6, "GeoLite2-Country", \%c,
	    "1.0.1.0/24", { registered_country => { iso_code => "CN" } },
	    "8.8.8.0/24", { country => { iso_code => "US" },
	        registered_country => { iso_code => "CN" } });
	db("badzone.mmdb", 6, "govgate-zones", { zone => "uint32" },
	    "10.0.0.0/8", { zone => 42 });
' "$tmp" || bail "writing the extra databases failed"
echo "not a database" > "$tmp/notmmdb.mmdb"

"$top_builddir/tests/unit/geo_test" "$tmp"
