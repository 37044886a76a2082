# Writes a text file as a C string (fcgi/openapi.json -> openapi-json.c,
# declared in openapi.h).  Portable awk: characters are escaped one at a
# time, since gsub's handling of backslashes differs between awks; '?' is
# escaped too, so that no "??x" becomes a trigraph under -std=c11.
BEGIN {
	print "/* Generated from openapi.json by openapi-embed.awk: do not edit. */"
	print "#include <stddef.h>"
	print ""
	print "extern const char pv_openapi_json[];"
	print "extern const size_t pv_openapi_json_len;"
	print ""
	print "const char pv_openapi_json[] ="
}
{
	out = ""
	n = length($0)
	for (i = 1; i <= n; i++) {
		c = substr($0, i, 1)
		if (c == "\\" || c == "\"" || c == "?")
			out = out "\\" c
		else if (c == "\t")
			out = out "\\t"
		else
			out = out c
	}
	printf "\t\"%s\\n\"\n", out
}
END {
	if (NR == 0)
		print "\t\"\""
	print "\t;"
	print "const size_t pv_openapi_json_len = sizeof pv_openapi_json - 1;"
}
