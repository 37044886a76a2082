# Sourced: the TAP lines of a test script (https://testanything.org).
#
#   ok NAME...          prints "ok N - NAME" (N counts from 1)
#   not_ok NAME...      prints "not ok N - NAME" and sets failed=1
#   check NAME CMD...   runs CMD: ok NAME when it succeeds, not_ok NAME when not
#
# The script prints its plan ("1..COUNT") itself and ends with `exit $failed`
# (or its own summary); $n is the number of lines printed so far.
n=0
failed=0
ok()
{
	n=$((n + 1))
	echo "ok $n - $*"
}
not_ok()
{
	n=$((n + 1))
	failed=1
	echo "not ok $n - $*"
}
check()
{
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
