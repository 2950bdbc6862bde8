"""The turn-taking policy: modes, barge-in, push-to-talk, mute, mode switches, invariants."""

from __future__ import annotations

import random

import pytest

from voicecli.protocol.dialects import TurnDetection
from voicecli.turns import (
    BYTES_PER_MS,
    AppendAudio,
    CancelResponse,
    ClearInputBuffer,
    CommitAudio,
    CreateResponse,
    FlushPlayback,
    Mode,
    Notice,
    PlayAudio,
    SendText,
    State,
    Truncate,
    TurnPolicy,
    TurnSettings,
    UpdateTurnDetection,
    turn_detection_for,
)


def pcm(ms: int, value: int = 1) -> bytes:
    return bytes([value, 0]) * (ms * BYTES_PER_MS // 2)


def ready(mode: Mode = Mode.VAD, **kwargs) -> TurnPolicy:
    policy = TurnPolicy(mode=mode, **kwargs)
    policy.on_session_ready()
    return policy


def speaking_assistant(policy: TurnPolicy, response: str = "r1", item: str = "a1") -> None:
    """Bring the policy to: response `response` active, 200 ms of `item` received."""
    policy.on_response_created(response)
    policy.on_output_audio(response, item, 0, pcm(200))


# --- turn detection per mode ---------------------------------------------------------------


def test_turn_detection_per_mode() -> None:
    settings = TurnSettings(eagerness="high", vad_silence_duration_ms=400)
    assert turn_detection_for(Mode.PTT, settings) is None
    assert turn_detection_for(Mode.SEMANTIC, settings) == TurnDetection(
        type="semantic_vad", eagerness="high", create_response=True, interrupt_response=True
    )
    vad = turn_detection_for(Mode.VAD, settings)
    assert vad.to_wire() == {
        "type": "server_vad",
        "silence_duration_ms": 400,
        "create_response": True,
        "interrupt_response": True,
    }


# --- states --------------------------------------------------------------------------------


def test_resting_states() -> None:
    assert TurnPolicy(mode=Mode.VAD).state is State.IDLE  # not connected yet
    assert ready(Mode.VAD).state is State.LISTENING
    assert ready(Mode.SEMANTIC).state is State.LISTENING
    assert ready(Mode.PTT).state is State.IDLE
    assert ready(Mode.VAD, audio=False).state is State.IDLE


def test_vad_voice_turn_walks_through_every_state() -> None:
    policy = ready()
    assert policy.on_speech_started("u1") == []
    assert policy.state is State.USER_SPEAKING
    policy.on_speech_stopped("u1")
    assert policy.state is State.THINKING
    policy.on_committed("u1")
    policy.on_response_created("r1")
    assert policy.state is State.THINKING
    actions = policy.on_output_audio("r1", "a1", 0, pcm(100))
    assert actions == [PlayAudio(pcm(100), "a1", 0)]
    assert policy.state is State.ASSISTANT_SPEAKING
    policy.on_output_audio("r1", "a1", 0, pcm(100))
    policy.on_output_audio_done("a1", 0)
    policy.on_response_done("r1")
    # Still audible: the state follows playback, not generation.
    policy.tick(1.0, played_ms=lambda item, index: 120)
    assert policy.state is State.ASSISTANT_SPEAKING
    policy.tick(1.1, played_ms=lambda item, index: 190)  # within the 25 ms tolerance
    assert policy.state is State.LISTENING
    assert policy.playing == ()


def test_text_reply_counts_as_speaking_while_it_streams() -> None:
    policy = ready(audio=False)
    policy.send_text("hi")
    assert policy.state is State.THINKING
    policy.on_response_created("r1")
    policy.on_output_text("r1")
    assert policy.state is State.ASSISTANT_SPEAKING
    policy.on_response_done("r1")
    assert policy.state is State.IDLE


def test_muted_overrides_resting_and_user_speaking_only() -> None:
    policy = ready()
    policy.toggle_mute()
    assert policy.state is State.MUTED
    policy.on_speech_started()
    assert policy.state is State.MUTED
    policy.on_speech_stopped()
    assert policy.state is State.THINKING
    speaking_assistant(policy)
    assert policy.state is State.ASSISTANT_SPEAKING
    policy.toggle_mute()
    assert not policy.muted


# --- barge-in ------------------------------------------------------------------------------


def test_vad_barge_in_flushes_truncates_and_does_not_cancel() -> None:
    policy = ready()
    speaking_assistant(policy)
    actions = policy.on_speech_started("u2")
    # The server cancels by itself (interrupt_response): no response.cancel race.
    assert actions == [FlushPlayback(), Truncate("a1", 0)]
    assert policy.state is State.USER_SPEAKING
    # Deltas already in flight for the interrupted response are not played...
    assert policy.on_output_audio("r1", "a1", 0, pcm(40)) == []
    policy.on_response_done("r1")
    # ...but the next response is.
    policy.on_speech_stopped("u2")
    policy.on_response_created("r2")
    assert policy.on_output_audio("r2", "a2", 0, pcm(40)) == [PlayAudio(pcm(40), "a2", 0)]


def test_barge_in_after_generation_ended_still_truncates_what_plays() -> None:
    policy = ready()
    speaking_assistant(policy)
    policy.on_output_audio_done("a1", 0)
    policy.on_response_done("r1")
    assert policy.on_speech_started() == [FlushPlayback(), Truncate("a1", 0)]


def test_barge_in_with_nothing_audible_does_nothing() -> None:
    policy = ready()
    policy.on_response_created("r1")  # thinking, no audio yet
    assert policy.on_speech_started() == []
    # Audio already played out is not truncated either.
    policy2 = ready()
    speaking_assistant(policy2)
    policy2.on_response_done("r1")
    policy2.tick(5.0, played_ms=lambda item, index: 200)
    assert policy2.on_speech_started() == []


def test_barge_in_truncates_every_audible_part_of_a_multi_item_response() -> None:
    policy = ready()
    policy.on_response_created("r1")
    policy.on_output_audio("r1", "a1", 0, pcm(100))
    policy.on_output_audio("r1", "a2", 0, pcm(100))
    assert policy.on_speech_started() == [FlushPlayback(), Truncate("a1", 0), Truncate("a2", 0)]


def test_ptt_press_cancels_active_response_once() -> None:
    policy = ready(Mode.PTT)
    speaking_assistant(policy)
    actions = policy.ptt_press(0.0)
    assert actions == [CancelResponse("r1"), FlushPlayback(), Truncate("a1", 0), ClearInputBuffer()]
    policy.ptt_release(0.05)
    # A second press before the cancelled response.done must not cancel again.
    assert CancelResponse("r1") not in policy.ptt_press(0.1)


def test_ptt_press_without_active_response_never_cancels() -> None:
    policy = ready(Mode.PTT)
    speaking_assistant(policy)
    policy.on_response_done("r1")
    assert policy.ptt_press(0.0) == [FlushPlayback(), Truncate("a1", 0), ClearInputBuffer()]


def test_typed_message_interrupts_and_waits_for_the_cancelled_response() -> None:
    policy = ready()
    speaking_assistant(policy)
    actions = policy.send_text("  stop, tell me a joke ")
    assert actions == [
        CancelResponse("r1"),
        FlushPlayback(),
        Truncate("a1", 0),
        SendText("stop, tell me a joke"),
    ]
    # response.create is held back until the active response is over.
    assert policy.on_response_done("r1") == [CreateResponse()]
    assert policy.state is State.THINKING


def test_empty_text_is_ignored() -> None:
    assert ready().send_text("   ") == []
    assert TurnPolicy().send_text("hello") == []  # not connected


# --- push-to-talk --------------------------------------------------------------------------


def test_ptt_turn_with_preroll_commits_and_creates() -> None:
    policy = ready(Mode.PTT)
    for _ in range(20):  # 1 s of audio before the press; only 300 ms is kept
        assert policy.on_mic_block(pcm(50)) == []
    actions = policy.ptt_press(1.0)
    assert actions[0] == ClearInputBuffer()
    assert isinstance(actions[1], AppendAudio)
    assert len(actions[1].pcm) == 300 * BYTES_PER_MS
    assert policy.state is State.USER_SPEAKING
    assert policy.on_mic_block(pcm(50)) == [AppendAudio(pcm(50))]
    assert policy.ptt_release(1.5) == [CommitAudio(), CreateResponse()]
    assert policy.state is State.THINKING


def test_preroll_keeps_whole_samples_of_the_latest_audio() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=100))
    policy.on_mic_block(pcm(70, value=1))
    policy.on_mic_block(pcm(70, value=2))
    append = policy.ptt_press(0.0)[1]
    assert len(append.pcm) == 100 * BYTES_PER_MS
    assert append.pcm[-70 * BYTES_PER_MS :] == pcm(70, value=2)
    assert append.pcm[0] == 1 and len(append.pcm) % 2 == 0


@pytest.mark.parametrize(("held_ms", "commits"), [(99, False), (100, True), (160, True)])
def test_ptt_commits_only_with_100ms(held_ms: int, commits: bool) -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_press(0.0)
    policy.on_mic_block(pcm(held_ms))
    actions = policy.ptt_release(1.0)
    if commits:
        assert actions == [CommitAudio(), CreateResponse()]
    else:
        assert actions[0] == ClearInputBuffer()
        assert isinstance(actions[1], Notice) and "100 ms" in actions[1].text
        assert policy.state is State.IDLE


def test_preroll_counts_towards_the_100ms() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=300))
    policy.on_mic_block(pcm(120))
    policy.ptt_press(0.0)
    assert policy.ptt_release(0.01) == [CommitAudio(), CreateResponse()]


def test_ptt_release_defers_create_while_cancelled_response_finishes() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    speaking_assistant(policy)
    policy.ptt_press(0.0)
    policy.on_mic_block(pcm(200))
    assert policy.ptt_release(0.3) == [CommitAudio()]
    assert policy.on_response_done("r1") == [CreateResponse()]


def test_ptt_ignores_press_when_not_ptt_or_not_connected() -> None:
    assert ready(Mode.VAD).ptt_press(0.0) == []
    assert TurnPolicy(mode=Mode.PTT).ptt_press(0.0) == []
    assert ready(Mode.PTT, audio=False).ptt_press(0.0) == []
    assert ready(Mode.PTT).ptt_release(0.0) == []


def test_ptt_toggle() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_toggle(0.0)
    assert policy.recording and policy.hold_source == "toggle"
    policy.on_mic_block(pcm(150))
    assert policy.ptt_toggle(2.0) == [CommitAudio(), CreateResponse()]
    assert not policy.recording


def test_ptt_press_unmutes_and_muted_preroll_is_not_kept() -> None:
    policy = ready(Mode.PTT)
    policy.toggle_mute()
    policy.on_mic_block(pcm(200))
    assert policy.ptt_press(0.0) == [ClearInputBuffer()]
    assert not policy.muted


def test_muting_while_pressed_ends_the_turn() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_press(0.0)
    policy.on_mic_block(pcm(200))
    assert policy.set_muted(True) == [CommitAudio(), CreateResponse()]
    assert policy.on_mic_block(pcm(50)) == []


def test_hold_by_key_repeat_single_tap_releases_after_first_gap() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_key(10.0)
    assert policy.hold_source == "keys"
    assert policy.tick(10.69) == []
    assert policy.recording
    actions = policy.tick(10.71)
    assert not policy.recording
    assert actions[0] == ClearInputBuffer()  # nothing was said: too short, not committed


def test_hold_by_key_repeat_uses_short_gap_after_repeats_start() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_key(0.0)
    policy.on_mic_block(pcm(500))
    policy.ptt_key(0.6)  # OS repeat delay
    for i in range(1, 10):
        policy.ptt_key(0.6 + i * 0.033)
        assert policy.tick(0.6 + i * 0.033 + 0.01) == []
    last = 0.6 + 9 * 0.033
    assert policy.tick(last + 0.14) == []
    assert policy.tick(last + 0.16) == [CommitAudio(), CreateResponse()]


def test_keys_do_not_extend_a_toggled_turn() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_toggle(0.0)
    policy.ptt_key(0.1)
    assert policy.tick(5.0) == []  # a toggle is not released by the key-repeat timer
    assert policy.recording


# --- mic routing and mute ------------------------------------------------------------------


def test_vad_streams_mic_once_connected_and_sends_silence_when_muted() -> None:
    policy = TurnPolicy(mode=Mode.VAD)
    assert policy.on_mic_block(pcm(20)) == []  # before the session is ready
    policy.on_session_ready()
    assert policy.on_mic_block(pcm(20)) == [AppendAudio(pcm(20))]
    policy.set_muted(True)
    assert policy.on_mic_block(pcm(20)) == [AppendAudio(bytes(20 * BYTES_PER_MS))]


def test_text_only_never_uses_audio() -> None:
    policy = ready(audio=False)
    assert policy.on_mic_block(pcm(20)) == []
    policy.on_response_created("r1")
    assert policy.on_output_audio("r1", "a1", 0, pcm(20)) == []
    assert policy.playing == ()


# --- mode switches -------------------------------------------------------------------------


def test_switch_vad_to_semantic_to_ptt_and_back() -> None:
    policy = ready(Mode.VAD, settings=TurnSettings(eagerness="low"))
    semantic = TurnDetection(
        type="semantic_vad", eagerness="low", create_response=True, interrupt_response=True
    )
    assert policy.set_mode("semantic") == [UpdateTurnDetection(semantic)]
    assert policy.set_mode(Mode.SEMANTIC) == []
    high = TurnDetection(
        type="semantic_vad", eagerness="high", create_response=True, interrupt_response=True
    )
    assert policy.set_mode(Mode.SEMANTIC, eagerness="high") == [UpdateTurnDetection(high)]
    policy.on_speech_started()
    assert policy.set_mode(Mode.PTT) == [UpdateTurnDetection(None), ClearInputBuffer()]
    assert policy.state is State.IDLE
    assert policy.set_mode(Mode.VAD) == [
        UpdateTurnDetection(turn_detection_for(Mode.VAD, policy.settings))
    ]
    assert policy.state is State.LISTENING


def test_leaving_ptt_while_pressed_finishes_that_turn_first() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_press(0.0)
    policy.on_mic_block(pcm(300))
    actions = policy.set_mode(Mode.VAD)
    assert actions[:2] == [CommitAudio(), CreateResponse()]
    assert isinstance(actions[2], UpdateTurnDetection) and actions[2].turn_detection is not None


def test_mode_switch_before_connect_changes_mode_silently() -> None:
    policy = TurnPolicy(mode=Mode.VAD)
    assert policy.set_mode(Mode.PTT) == []
    assert policy.turn_detection() is None


def test_vad_events_in_flight_after_switch_to_ptt_are_ignored() -> None:
    policy = ready(Mode.VAD)
    policy.set_mode(Mode.PTT)
    policy.on_speech_started()
    assert policy.state is State.IDLE


# --- errors and playback bookkeeping -------------------------------------------------------


def test_lost_create_race_asks_again_after_the_server_response() -> None:
    policy = ready()
    policy.send_text("hello")  # CreateResponse sent...
    policy.on_response_created("r-vad")  # ...but a VAD response won the race
    policy.on_error("conversation_already_has_active_response")
    assert policy.on_response_done("r-vad") == [CreateResponse()]


def test_refused_commit_stops_thinking() -> None:
    policy = ready(Mode.PTT, settings=TurnSettings(preroll_ms=0))
    policy.ptt_press(0.0)
    policy.on_mic_block(pcm(120))
    policy.ptt_release(0.2)
    assert policy.state is State.THINKING
    policy.on_error("input_audio_buffer_commit_empty")
    assert policy.state is State.IDLE


def test_stalled_playback_is_retired_but_a_queued_part_waits_for_the_one_ahead() -> None:
    policy = ready()
    policy.on_response_created("r1")
    policy.on_output_audio("r1", "a1", 0, pcm(3000))
    policy.on_output_audio("r1", "a2", 0, pcm(500))
    policy.on_response_done("r1")
    positions = {"a1": 0, "a2": 0}

    def played(item: str, index: int) -> int:
        return positions[item]

    for step in range(1, 30):  # a1 plays for 2.9 s while a2 waits at 0
        positions["a1"] = step * 100
        policy.tick(step * 0.1, played)
    assert policy.playing == (("a1", 0), ("a2", 0))
    # The device dies: nothing moves any more; after the stall time both are over.
    policy.tick(3.5, played)
    assert policy.playing == (("a1", 0), ("a2", 0))
    policy.tick(4.0, played)
    assert policy.playing == ()
    assert policy.state is State.LISTENING


def test_thinking_gives_up_when_no_response_comes() -> None:
    policy = ready(settings=TurnSettings(response_timeout_s=15.0))
    policy.on_speech_started()
    policy.on_speech_stopped()  # ...and the server never answers this segment
    policy.tick(100.0)
    policy.tick(114.9)
    assert policy.state is State.THINKING
    policy.tick(115.1)
    assert policy.state is State.LISTENING


def test_a_slow_response_that_has_started_is_not_given_up() -> None:
    policy = ready(settings=TurnSettings(response_timeout_s=1.0))
    policy.send_text("hi")
    policy.tick(0.0)
    policy.on_response_created("r1")
    policy.tick(5.0)
    assert policy.state is State.THINKING


def test_new_speech_ends_the_wait_for_the_previous_turn() -> None:
    policy = ready()
    policy.on_speech_started()
    policy.on_speech_stopped()
    policy.on_speech_started()
    policy.toggle_mute()
    assert policy.state is State.MUTED and not policy.awaiting_response


def test_audio_lost_ends_assistant_speaking() -> None:
    policy = ready()
    speaking_assistant(policy)
    policy.on_response_done("r1")
    policy.on_audio_lost()
    assert policy.state is State.LISTENING


# --- invariants over random sessions -------------------------------------------------------


class _Server:
    """The server's view of responses, fed back to the policy without delay."""

    def __init__(self, policy: TurnPolicy) -> None:
        self.policy = policy
        self.active: str | None = None
        self.count = 0
        self.violations: list[str] = []

    def start(self) -> None:
        self.count += 1
        self.active = f"r{self.count}"
        self.run(self.policy.on_response_created(self.active))

    def finish(self) -> None:
        if self.active:
            done, self.active = self.active, None
            self.run(self.policy.on_response_done(done))

    def run(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, CreateResponse):
                if self.active:
                    self.violations.append("create while active")
                self.start()
            elif isinstance(action, CancelResponse):
                if action.response_id != self.active:
                    self.violations.append("cancel without active response")
                self.finish()


@pytest.mark.parametrize("seed", range(40))
def test_never_create_while_active_nor_cancel_when_idle(seed: int) -> None:
    rng = random.Random(seed)
    policy = ready(rng.choice(list(Mode)))
    server = _Server(policy)
    now = 0.0
    for _ in range(300):
        now += rng.uniform(0.01, 0.3)
        choice = rng.randrange(12)
        if choice == 0:
            server.run(policy.send_text("hi"))
        elif choice == 1:
            server.run(policy.ptt_toggle(now))
        elif choice == 2:
            server.run(policy.ptt_key(now))
        elif choice == 3:
            server.run(policy.on_mic_block(pcm(rng.choice([20, 40, 120]))))
        elif choice == 4:
            server.run(policy.set_mode(rng.choice(list(Mode))))
        elif choice == 5:
            server.run(policy.toggle_mute())
        elif choice == 6 and policy.mode is not Mode.PTT:
            server.run(policy.on_speech_started())
            if server.active:  # interrupt_response: the server cancels on its own
                server.finish()
        elif choice == 7 and policy.mode is not Mode.PTT:
            server.run(policy.on_speech_stopped())
            if not server.active:  # create_response
                server.start()
        elif choice == 8 and server.active:
            server.run(policy.on_output_audio(server.active, f"i{server.count}", 0, pcm(100)))
        elif choice == 9:
            server.finish()
        else:
            server.run(policy.tick(now, played_ms=lambda item, index: rng.randrange(0, 400)))
        assert policy.state in State
    assert server.violations == []
