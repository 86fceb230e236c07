"""The media stage: the images chat showed (Twitch emotes, third-party emote sets over time, badges)."""
