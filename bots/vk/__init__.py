"""The VK channel: Bots Long Poll or Callback API in, messages.send out (through vk_api)."""
