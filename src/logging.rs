//! Logs go to a file in the state directory, never to the terminal the UI draws on.
