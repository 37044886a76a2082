#!/bin/sh
# The conformance suite on the esdb backend against the stand-in playing an
# EventStoreDB <= v24.10 (ES-* headers only, no vnd.kurrent media types).
exec "${top_srcdir:-$(dirname "$0")/../..}/tests/conformance/esdb.sh" --header-generation es
