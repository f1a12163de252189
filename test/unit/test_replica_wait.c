/* test_replica_wait.c -- when the writer sends WAIT to a target master with
 * replicas, and what its reply means (writer/replica_wait.c): none without
 * replicas or writes, one at a time, a few ms apart or at once after a megabyte,
 * held commands confirmed only by a reply that reaches the count, a streak of
 * short replies reported every few seconds, a lost connection forgetting its WAIT. */
#include <criterion/criterion.h>

#include "writer/replica_wait.h"

Test(replica_wait, nothing_is_due_without_replicas_or_writes) {
    struct replica_wait wait;
    replica_wait_init(&wait, 0);
    replica_wait_wrote(&wait, 100);
    cr_assert_lt(replica_wait_due(&wait, 10.0), 0, "no replicas: never a WAIT");
    replica_wait_init(&wait, 1);
    cr_assert_lt(replica_wait_due(&wait, 10.0), 0, "nothing written: no WAIT");
}

Test(replica_wait, one_at_a_time_and_a_few_ms_apart) {
    struct replica_wait wait;
    replica_wait_init(&wait, 1);
    replica_wait_wrote(&wait, 100);
    cr_assert_eq(replica_wait_due(&wait, 10.0), 0, "the first WAIT goes at once");
    replica_wait_sent(&wait, 10.0);
    replica_wait_wrote(&wait, 100);
    cr_assert_lt(replica_wait_due(&wait, 10.001), 0, "one in flight: none more");
    cr_assert_eq(replica_wait_answered(&wait, 1, 10.001), 1);
    double due = replica_wait_due(&wait, 10.001);
    cr_assert(due > 0.003 && due <= REPLICA_WAIT_INTERVAL_S, "the next one later: %f", due);
    cr_assert_eq(replica_wait_due(&wait, 10.0 + REPLICA_WAIT_INTERVAL_S), 0);
}

Test(replica_wait, a_megabyte_of_writes_makes_it_due_at_once) {
    struct replica_wait wait;
    replica_wait_init(&wait, 2);
    replica_wait_sent(&wait, 5.0);
    cr_assert_eq(replica_wait_answered(&wait, 2, 5.0), 1);
    replica_wait_wrote(&wait, REPLICA_WAIT_EVERY_BYTES);
    cr_assert_eq(replica_wait_due(&wait, 5.0), 0);
}

Test(replica_wait, a_short_reply_keeps_the_commands_held_and_asks_again) {
    struct replica_wait wait;
    replica_wait_init(&wait, 2);
    replica_wait_wrote(&wait, 10);
    replica_wait_sent(&wait, 1.0);
    cr_assert_eq(replica_wait_answered(&wait, 1, 1.1), 0, "1 of 2 replicas is not enough");
    cr_assert_eq(replica_wait_due(&wait, 1.1), 0, "asked again at once");
    replica_wait_sent(&wait, 1.1);
    cr_assert_eq(replica_wait_answered(&wait, -1, 1.2), 0, "an unexpected reply confirms nothing");
    cr_assert_eq(replica_wait_should_warn(&wait, 1.2), 0);
    cr_assert_eq(replica_wait_should_warn(&wait, 1.1 + REPLICA_WAIT_WARN_S - 0.01), 0,
                 "the streak began at 1.1");
    double streak = replica_wait_should_warn(&wait, 1.1 + REPLICA_WAIT_WARN_S + 0.01);
    cr_assert(streak >= REPLICA_WAIT_WARN_S, "%f", streak);
    cr_assert_eq(replica_wait_should_warn(&wait, 1.1 + REPLICA_WAIT_WARN_S + 1), 0,
                 "reported once per period");
    replica_wait_sent(&wait, 9.0);
    cr_assert_eq(replica_wait_answered(&wait, 2, 9.0), 1);
    cr_assert_eq(replica_wait_should_warn(&wait, 30.0), 0, "the streak is over");
}

Test(replica_wait, a_lost_connection_forgets_its_wait) {
    struct replica_wait wait;
    replica_wait_init(&wait, 1);
    replica_wait_wrote(&wait, 10);
    replica_wait_sent(&wait, 1.0);
    replica_wait_reset(&wait, 1);
    cr_assert_eq(replica_wait_due(&wait, 2.0), 0, "held commands: a WAIT on the new connection");
    replica_wait_reset(&wait, 0);
    cr_assert_lt(replica_wait_due(&wait, 2.0), 0, "nothing held, nothing written: none");
}
