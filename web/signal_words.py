"""Alerts told to the member they are about: in her words, without the advice meant for her leads."""

# The same alerts on a member's own page: spoken to her, without the advice meant for her leads.
SIGNAL_WORDS_SELF = {
    "MemberOverextended": "may be over-extended",
    "MemberDisconnected": "have not exchanged with anyone for a while",
}
SIGNAL_HINTS_SELF = {
    "MemberOverextended": "This is not a judgement: they were asked to check in, so that you are not carrying it "
                          "alone. It is fine to say no, hand something on, or pause for a while on the Capacity "
                          "page (a pause is never reported). It clears by itself when giving and receiving even "
                          "out again.",
    "MemberDisconnected": "This is not a judgement: they may check in to see how you are. Whenever you are ready, "
                          "an exchange either way clears it; if you need a break, you can pause on the Capacity "
                          "page (a pause is never reported).",
}
