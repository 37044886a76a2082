# Sourced: the TAP lines of a test script (https://testanything.org).
#
#   ok NAME...          prints "ok N - NAME" (N counts from 1)
#   not_ok NAME...      prints "not ok N - NAME" and counts it in _failed
#   check NAME CMD...   runs CMD: ok NAME when it succeeds, not_ok NAME when not
#
# $_t is the number of results printed so far and $_failed the number of them
# that failed; the script prints its plan ("1..COUNT") and sets its exit status
# from them.  Underscored, so that a test's own counters (n, failed...) stay its own.
_t=0
_failed=0
ok()
{
	_t=$((_t + 1))
	echo "ok $_t - $*"
}
not_ok()
{
	_t=$((_t + 1))
	_failed=$((_failed + 1))
	echo "not ok $_t - $*"
}
check()
{
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
