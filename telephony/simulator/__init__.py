"""A Twilio stand-in: plays Twilio's part against the app over HTTP (or in-process).

``Simulator`` signs each webhook with the auth token exactly as Twilio does, follows the
TwiML verbs the app uses far enough to move calls through their states, sends status
callbacks and serves the REST endpoints the app calls, recording every request.
"""

from telephony.simulator.core import Phone, SimCall, Simulator

__all__ = ["Phone", "SimCall", "Simulator"]
