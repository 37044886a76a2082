/* Shared includes for the cmocka unit tests.  Every test program runs one
 * group and reports it as TAP, so the suite counts individual cases. */
#ifndef PV_TEST_H
#define PV_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define PV_RUN_TESTS(tests)                                                                        \
	(cmocka_set_message_output(CM_OUTPUT_TAP),                                                 \
	 cmocka_run_group_tests_name(__FILE__, tests, NULL, NULL) ? 1 : 0)

#endif
