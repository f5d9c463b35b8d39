use std::time::{Duration, Instant};

use crate::{forwards, CallMedia, CallState, Direction, EarlyMedia, EndReason};

const UP: Direction = Direction::CallerToCallee;
const DOWN: Direction = Direction::CalleeToCaller;

#[test]
fn the_hold_until_answer_table() {
    use CallState::*;
    use EarlyMedia::{CalleeToCaller as Early, None as NoEarly};
    let table = [
        (Setup, UP, NoEarly, false),
        (Setup, DOWN, NoEarly, false),
        (Setup, UP, Early, false),
        (Setup, DOWN, Early, true),
        (Answered, UP, NoEarly, true),
        (Answered, DOWN, NoEarly, true),
        (Answered, UP, Early, true),
        (Answered, DOWN, Early, true),
    ];
    for (state, dir, early, want) in table {
        assert_eq!(
            forwards(state, dir, early),
            want,
            "{state:?} {dir:?} {early:?}"
        );
    }
    for reason in [
        EndReason::Bye,
        EndReason::Cancel,
        EndReason::Failure,
        EndReason::Timeout,
        EndReason::MediaTimeout,
    ] {
        for dir in [UP, DOWN] {
            for early in [NoEarly, Early] {
                assert!(!forwards(Ended(reason), dir, early));
            }
        }
    }
}

#[test]
fn a_cancelled_call_delivers_nothing_to_the_callee() {
    let t0 = Instant::now();
    let mut call = CallMedia::new(EarlyMedia::CalleeToCaller, Duration::from_secs(30));
    for i in 0..100u64 {
        assert!(!call.forward(t0 + Duration::from_millis(20 * i), UP));
    }
    assert!(call.forward(t0, DOWN), "ring-back allowed by policy");
    call.end(EndReason::Cancel);
    call.answer(t0); // a late 200 after CANCEL changes nothing
    assert_eq!(call.state(), CallState::Ended(EndReason::Cancel));
    assert!(!call.forward(t0, UP) && !call.forward(t0, DOWN));
    assert_eq!(call.forwarded(UP), 0);
    assert_eq!(call.held(UP), 101);
    assert_eq!((call.forwarded(DOWN), call.held(DOWN)), (1, 1));
    assert_eq!(call.poll_timeout(), None);
}

#[test]
fn answered_media_flows_until_silence() {
    let t0 = Instant::now();
    let mut call = CallMedia::new(EarlyMedia::None, Duration::from_secs(30));
    assert!(!call.forward(t0, DOWN));
    assert_eq!(call.poll_timeout(), None);
    let answered = t0 + Duration::from_secs(5);
    call.answer(answered);
    assert_eq!(
        call.poll_timeout(),
        Some(answered + Duration::from_secs(30))
    );
    let last = answered + Duration::from_secs(10);
    assert!(call.forward(last, UP) && call.forward(last, DOWN));
    assert_eq!(call.poll_timeout(), Some(last + Duration::from_secs(30)));
    assert_eq!(call.handle_timeout(last + Duration::from_secs(29)), None);
    let dead = call.handle_timeout(last + Duration::from_secs(30)).unwrap();
    assert_eq!(dead.since, last);
    assert_eq!(call.state(), CallState::Ended(EndReason::MediaTimeout));
    assert_eq!(call.handle_timeout(last + Duration::from_secs(90)), None);
    assert!(!call.forward(last, UP));
    // a BYE after the media timeout keeps the first reason
    call.end(EndReason::Bye);
    assert_eq!(call.state(), CallState::Ended(EndReason::MediaTimeout));
}

#[test]
fn a_silent_answered_call_times_out_from_the_answer() {
    let t0 = Instant::now();
    let mut call = CallMedia::new(EarlyMedia::None, Duration::from_secs(60));
    call.answer(t0);
    call.set_timeout(Duration::from_secs(5));
    assert_eq!(
        call.handle_timeout(t0 + Duration::from_secs(5))
            .map(|d| d.since),
        Some(t0)
    );
}
