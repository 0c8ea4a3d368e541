"""The visits service: teaching-team visits, their exchange slots, and the slot-request workflow."""
